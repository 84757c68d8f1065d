"""Long-running work: durable jobs under leases renewed by heartbeats, the workers every
replica runs, and the scheduler that lets interactive requests go first."""
