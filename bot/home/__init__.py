"""The App Home tab: what a viewer sees, and publishing it."""
