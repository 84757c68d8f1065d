"""The facebank server: settings, operations and the two HTTP surfaces."""
