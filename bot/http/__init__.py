"""HTTP routes that are not Slack's: health, metrics, the alert webhook, exports."""
