"""TensorRT backend: engines built and timed with ``trtexec`` on the board.

``commands`` holds the pure part: which trtexec flags each TensorRT version takes, the argv of the build,
timing and profile runs, and the engine cache key. Parsing trtexec's text and JSON output lives in
edgeprof.parsers.trtexec.
"""
