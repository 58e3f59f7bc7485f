"""Array operations, one small file each: pure functions of arrays, backend taken from the inputs."""
