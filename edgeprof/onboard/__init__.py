"""What edgeprof runs on a board, as real files: shell for the board lease (lease.sh), which the tests check with
shellcheck. The host reads each file's text with importlib.resources and sends it; nothing here is imported
on the host as a library."""
