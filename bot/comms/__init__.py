"""Customer-update bookkeeping: how well an incident kept its comms cadence."""
