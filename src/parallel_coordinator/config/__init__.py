"""Configuration: the server's settings and the file they are read from."""
