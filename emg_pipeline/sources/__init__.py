"""Sources of samples: synthetic recordings, recording files, BLE boards."""
