"""Provisioning: downloads, checksums, converters and manifests for the model files and the test
photos. Run by `facebank models fetch` and `facebank photos fetch`; the server never imports it."""
