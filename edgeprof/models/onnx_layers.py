"""Which Caffe layers a runtime's node or layer name computes, for an ONNX file edgeprof exported from a prototxt
(onnx_export.name_nodes_by_layer records {node name: [layers]} in the file's metadata).

Runtimes rename what they run. ONNX Runtime's graph optimizer fuses nodes and names the new ones after a node
("fused fc6/Gemm", op FusedGemm: the Gemm and the ReLU reading its output) or an output tensor
("/layers.1/Relu_output_0_nchwc", op Conv: the NCHWc Conv ending in the ReLU's output), and inserts nodes of its
own (ReorderInput/ReorderOutput, layout conversions). So a name is looked up as the longest node or tensor name it
contains; a Fused<op> takes the activation reading its output along; a kernel whose op type is not its node's is
followed back through first inputs to the node of that type (at most FUSED_CHAIN nodes). That is a reading of
names, not of the runtime's optimized graph: a name that holds none of the file's is no layer's.
"""
from __future__ import annotations

import json

from .onnx_export import NODE_LAYERS_KEY

# The longest chain of nodes one fused kernel is followed back over: Conv + BatchNormalization + Add + Relu.
FUSED_CHAIN = 4
# What ORT fuses into a Gemm or Conv as a FusedGemm / FusedConv ("fused " + the node's name): the sole reader of
# its output when it is one of these (IsFusableActivation in
# https://github.com/microsoft/onnxruntime/blob/main/onnxruntime/core/optimizer/gemm_activation_fusion.cc).
FUSED_ACTIVATIONS = ("Elu", "HardSigmoid", "LeakyRelu", "Relu", "Selu", "Sigmoid", "Softplus", "Softsign", "Tanh",
                     "ScaledTanh", "ParametricSoftplus", "ThresholdedRelu")


class LayerNames:
    def __init__(self, model) -> None:
        """`model`: an onnx.ModelProto of edgeprof's export."""
        covered = next((json.loads(p.value) for p in model.metadata_props if p.key == NODE_LAYERS_KEY), {})
        self.nodes: dict[str, object] = {}      # node name or output tensor name -> node
        self.producer: dict[str, object] = {}   # tensor -> the node writing it
        self.consumers: dict[str, list] = {}    # tensor -> the nodes reading it
        self.covers_of: dict[str, list[str]] = {}  # node name -> layers
        self._longest_first: list[str] | None = None
        for node in model.graph.node:
            for tensor in node.output:
                self.producer[tensor] = node
            for tensor in node.input:
                self.consumers.setdefault(tensor, []).append(node)
            if node.name in covered:
                self.covers_of[node.name] = list(covered[node.name])
                self.nodes[node.name] = node
                for tensor in node.output:
                    self.nodes[tensor] = node

    @classmethod
    def of_file(cls, path: str) -> "LayerNames":
        import onnx
        return cls(onnx.load(path, load_external_data=False))

    def __bool__(self) -> bool:
        return bool(self.covers_of)

    def node_of(self, name: str):
        """The node whose name or output tensor is the longest part of `name`, or None."""
        if self._longest_first is None:
            self._longest_first = sorted(self.nodes, key=len, reverse=True)
        found = next((known for known in self._longest_first if known in name), None)
        return None if found is None else self.nodes[found]

    def covers(self, name: str, op: str | None = None) -> list[str]:
        """The layers `name` computes, in net order ([] when it maps to none); `op`: the runtime's op type."""
        node = self.node_of(name)
        if node is None:
            return []
        chain = [node]
        if op and op == "Fused" + node.op_type:
            # ORT's FusedConv / FusedGemm: the node with the activation that alone reads its output.
            readers = self.consumers.get(node.output[0], [])
            if len(readers) == 1 and readers[0].op_type in FUSED_ACTIVATIONS and readers[0].name in self.covers_of:
                chain.insert(0, readers[0])
        else:
            while op and op != node.op_type and node.op_type not in op and len(chain) < FUSED_CHAIN:
                node = self.producer.get(node.input[0]) if node.input else None
                if node is None or node.name not in self.covers_of:
                    chain = chain[:1]
                    break
                chain.append(node)
            if op and chain[-1].op_type != op and chain[-1].op_type not in op:
                chain = chain[:1]  # no node of that type close enough: the named node alone
        found: list[str] = []
        for one in reversed(chain):
            found += [layer for layer in self.covers_of[one.name] if layer not in found]
        return found

# The row of a profile's nodes that compute no layer of the prototxt (a layout reorder ORT inserted).
OTHER = "(other nodes)"


def group_nodes(nodes: list[dict], names: LayerNames) -> list[dict]:
    """A runtime's per-node times ({"node", "op", "ms"}, in the order they ran) summed per group of layers:
    [{"name", "covers", "ms", "nodes"}], a group where one node (or several) computes several layers."""
    groups: list[dict] = []
    for node in nodes:
        if node.get("ms") is None:
            continue
        covers = names.covers(node["node"], node.get("op"))
        # Nodes of overlapping layers are one group (fc6's Flatten and the Gemm fused with relu6).
        group = next((g for g in groups if set(g["covers"]) & set(covers) or not (covers or g["covers"])), None)
        if group is None:
            group = {"name": covers[0] if covers else OTHER, "covers": [], "ms": 0.0, "nodes": []}
            groups.append(group)
        group["covers"] += [layer for layer in covers if layer not in group["covers"]]
        group["ms"] += node["ms"]
        group["nodes"].append(node["node"])
    return groups
