"""Stand-in for the tensorrt module (see README.md here): TRT_STANDIN_VERSION picks the version (8.2.1 by
default); a model file is JSON {"inputs": [[name, shape]], "outputs": [[name, shape]], "ops": [[node name,
op type]]} ("ops" optional)."""
import json
import os
import time

__version__ = os.environ.get("TRT_STANDIN_VERSION", "8.2.1")
_VERSION = tuple(int(p) for p in __version__.split(".")[:2])
_PLAN = b"trt-standin-plan\n"


def _log(call, **details):
    if os.environ.get("TRT_STANDIN_LOG"):
        with open(os.environ["TRT_STANDIN_LOG"], "a") as f:
            f.write(json.dumps(dict(details, call=call)) + "\n")


class DataType(object):
    def __init__(self, name):
        self.name = name

    def __str__(self):
        return "DataType." + self.name


float32 = DataType("FLOAT")
float16 = DataType("HALF")
int8 = DataType("INT8")
int32 = DataType("INT32")


class Logger(object):
    WARNING = 2

    def __init__(self, severity):
        self.severity = severity


class NetworkDefinitionCreationFlag(object):
    EXPLICIT_BATCH = 0


class BuilderFlag(object):
    FP16 = "FP16"
    INT8 = "INT8"


class MemoryPoolType(object):
    WORKSPACE = "WORKSPACE"


class TensorIOMode(object):
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"


class _Tensor(object):
    def __init__(self, name, shape):
        self.name = name
        self.shape = shape

    def set_dynamic_range(self, low, high):
        _log("set_dynamic_range", tensor=self.name, low=low, high=high)
        return True


class _Layer(object):
    def __init__(self, output):
        self.num_outputs = 1
        self._output = output

    def get_output(self, index):
        return self._output


class _Network(object):
    def __init__(self):
        self.inputs = []
        self.outputs = []

    @property
    def num_inputs(self):
        return len(self.inputs)

    def get_input(self, index):
        return self.inputs[index]

    @property
    def num_layers(self):
        return len(self.outputs)

    def get_layer(self, index):
        return _Layer(self.outputs[index])


# Operators the ONNX parser has no importer for before a version (onnx-tensorrt docs/operators.md per branch:
# LayerNormalization "N" on 8.4-GA/8.5-GA, "Y" on 8.6-GA); the trtexec stand-in's NO_IMPORTER holds the same.
_NO_IMPORTER = {"LayerNormalization": (8, 6)}


class OnnxParser(object):
    def __init__(self, network, logger):
        self.network = network
        self.errors = []

    def parse(self, data):
        try:
            model = json.loads(data.decode("utf-8"))
        except ValueError:
            self.errors.append("not a stand-in model")
            return False
        for number, (name, op) in enumerate(model.get("ops", [])):
            if _VERSION < _NO_IMPORTER.get(op, (0, 0)):
                # str() of an 8.x IParserError for an operator tried as a plugin and not found, as a real
                # 8.2.3 printed it (github.com/open-mmlab/mmdeploy/issues/2398 and /1167).
                self.errors.append("In node %d (importFallbackPluginImporter): UNSUPPORTED_NODE: Assertion failed: "
                                   "creator && \"Plugin not found, are the plugin name, version, and namespace "
                                   "correct?\"" % number)
                return False
        self.network.inputs = [_Tensor(name, shape) for name, shape in model["inputs"]]
        self.network.outputs = [_Tensor(name, shape) for name, shape in model["outputs"]]
        return True

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, index):
        return self.errors[index]


class _Config(object):
    def __init__(self):
        self.flags = []

    def set_flag(self, flag):
        _log("set_flag", flag=flag)
        self.flags.append(flag)

    # 8.4 brought set_memory_pool_limit; 10.0 removed max_workspace_size.
    if _VERSION < (8, 4):
        def _set_workspace(self, size):
            _log("max_workspace_size", bytes=size)
        max_workspace_size = property(None, _set_workspace)
    else:
        def set_memory_pool_limit(self, pool, size):
            _log("set_memory_pool_limit", pool=pool, bytes=size)


class Builder(object):
    def __init__(self, logger):
        pass

    def create_network(self, flags=0):
        _log("create_network", flags=flags)
        return _Network()

    def create_builder_config(self):
        return _Config()

    def build_serialized_network(self, network, config):
        _log("build", flags=config.flags)
        described = {"version": __version__,
                     "tensors": [[t.name, True, t.shape] for t in network.inputs]
                     + [[t.name, False, t.shape] for t in network.outputs]}
        return _PLAN + json.dumps(described).encode("utf-8")


class _Context(object):
    def __init__(self, engine):
        self.engine = engine
        self.addresses = {}

    def _run(self, stream):
        time.sleep(0.0005)  # something to time
        return True

    if _VERSION[0] == 8:
        def execute_async_v2(self, bindings, stream_handle):
            assert len(bindings) == len(self.engine.tensors) and all(bindings)
            _log("execute_async_v2")
            return self._run(stream_handle)
    else:
        def set_tensor_address(self, name, address):
            self.addresses[name] = address
            return True

        def execute_async_v3(self, stream_handle):
            assert set(self.addresses) == set(t[0] for t in self.engine.tensors)
            _log("execute_async_v3")
            return self._run(stream_handle)


class _Engine(object):
    def __init__(self, tensors):
        self.tensors = tensors

    def create_execution_context(self):
        return _Context(self)

    # 10.0 removed the binding API; the I/O tensor API came in 8.5.
    if _VERSION[0] == 8:
        @property
        def num_bindings(self):
            return len(self.tensors)

        def get_binding_name(self, i):
            return self.tensors[i][0]

        def binding_is_input(self, i):
            return self.tensors[i][1]

        def get_binding_shape(self, i):
            return tuple(self.tensors[i][2])

        def get_binding_dtype(self, i):
            return float32
    if _VERSION >= (8, 5):
        @property
        def num_io_tensors(self):
            return len(self.tensors)

        def get_tensor_name(self, i):
            return self.tensors[i][0]

        def _tensor(self, name):
            return next(t for t in self.tensors if t[0] == name)

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if self._tensor(name)[1] else TensorIOMode.OUTPUT

        def get_tensor_shape(self, name):
            return tuple(self._tensor(name)[2])

        def get_tensor_dtype(self, name):
            return float32


class Runtime(object):
    def __init__(self, logger):
        pass

    def deserialize_cuda_engine(self, plan):
        _log("deserialize")
        if not plan.startswith(_PLAN):
            return None
        described = json.loads(plan[len(_PLAN):].decode("utf-8"))
        # Real TensorRT refuses plans of other versions.
        return _Engine(described["tensors"]) if described["version"] == __version__ else None
