"""TensorRT backend: engines built and timed on the board with ``trtexec``, or with the TensorRT Python API
(edgeprof/onboard/tensorrt_runner.py) where the board has no trtexec; ``runner`` picks the tool in prepare.

``commands`` holds the pure part: which trtexec flags each TensorRT version takes, the argv of the build,
timing and profile runs, and the engine cache key. Parsing trtexec's text and JSON output lives in
edgeprof.parsers.trtexec.
"""
