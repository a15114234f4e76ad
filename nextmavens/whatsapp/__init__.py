"""WhatsApp instances in the shared Evolution API: what a manifest declares, what Evolution holds, the difference."""
