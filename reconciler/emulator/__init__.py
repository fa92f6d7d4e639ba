"""A local, faithful emulator of the Imply Polaris Connections v1, Jobs v1 and Tables v1 APIs."""
