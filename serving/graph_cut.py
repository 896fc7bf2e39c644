"""The served ONNX graph cut in two after an encoder layer, for cheap word occlusion (``serving/explain.py``).

Occlusion deletes one word at a time and scores each variant: ``1 + words`` full forward passes per post, and on
this 2-core machine that is most of a second for a long post. Cut after layer ``k`` (of ``n``), the same graph is
``lower`` (embeddings + layers ``0..k-1``) and ``upper`` (layers ``k..n-1``, pooler, classifier). A post goes
through ``lower`` once; each variant deletes the word's token rows from the layer-``k`` hidden states and goes
through ``upper`` only, which costs ``(n - k) / n`` of a forward pass. Upper-layer occlusion is what the evidence
measures; whether it picks the words whose *real* deletion moves the score is tested (tests/review/test_explain.py)
and measured (bench/explain.py), never assumed.

Both pieces are the nodes of the served file (int8 or fp32), unchanged, in one session (``cut_graph``): ``lower``
is the whole served graph, so the base scores are the served scores; ``upper`` is a copy of the nodes above the cut
(found with ``onnx.utils.Extractor``) on the same weights. Only graphs with ONNX
Runtime's fused attention (``Attention`` / ``QAttention``, whose mask index is one length per row) can be cut;
``cut_graph`` returns None for any other graph and the caller falls back to full occlusion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_ATTENTION_MASK_INPUT = {"Attention": 3, "QAttention": 5}
_LAYER_OUT = re.compile(r"layer\.(\d+)/output/LayerNorm/")


@dataclass
class GraphCut:
    session: object  # onnxruntime.InferenceSession of the served graph plus the upper layers' copy (see module doc)
    hidden: str
    layer: int  # the first layer above the cut
    layers: int  # layers in the whole encoder

    def run_lower(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits of the served graph and the hidden states entering layer ``layer`` (``[batch, tokens, dim]``)."""
        logits, hidden = self.session.run(["logits", self.hidden],
                                          {"input_ids": input_ids, "attention_mask": attention_mask})
        return logits, hidden

    def run_upper(self, hidden: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Logits from right-padded layer-``layer`` hidden states of ``lengths`` tokens each."""
        return self.session.run([CUT_LOGITS], {CUT_HIDDEN: hidden.astype(np.float32, copy=False),
                                               CUT_LENGTHS: lengths.astype(np.int32),
                                               # required inputs of the graph (one token: the served part runs
                                               # on it too, which costs about a millisecond)
                                               "input_ids": _ONE, "attention_mask": _ONE})[0]


CUT_HIDDEN, CUT_LENGTHS, CUT_LOGITS = "cut_hidden", "cut_lengths", "cut_logits"
_ONE = np.ones((1, 1), dtype=np.int64)


def _layer_outputs(graph) -> list[str]:
    """The hidden-state tensor leaving each encoder layer, in layer order (the layer's last LayerNorm)."""
    outs: dict[int, str] = {}
    for node in graph.node:
        if node.op_type not in ("SkipLayerNormalization", "LayerNormalization"):
            continue
        for name in node.output:
            m = _LAYER_OUT.search(name)
            if m and "attention" not in name:
                outs[int(m.group(1))] = name
    return [outs[i] for i in sorted(outs)] if outs and sorted(outs) == list(range(len(outs))) else []


def cut_graph(path: Path, upper_layers: int, *, threads: int | None = None, quantize_upper: bool = True
              ) -> GraphCut | None:
    """``path``'s graph with a cut before its last ``upper_layers`` encoder layers, as one session, or None where it
    cannot be cut (no fused attention, unrecognised layer names, or ``upper_layers`` not in 1..layers-1).

    The session's graph is the served graph, unchanged, with two more outputs (the hidden states at the cut and
    ``cut_logits``) and a copy of the nodes above the cut that reads ``cut_hidden`` / ``cut_lengths`` instead and
    uses the same weights (initialisers are shared by name, so they are held once). One session, one thread pool:
    two sessions taking turns on two cores slowed each other (their threads spin after a run).

    ``quantize_upper``: the copy's remaining fp32 weight MatMuls (all of them when the served graph is fp32) are
    quantised to int8 (dynamic, per channel, as the served int8 graphs are): the copy then costs about half, and
    its quantised weights (a few MB) are the only weights held twice. The copy only ranks words; its scores are
    never served."""
    import os
    import tempfile

    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnx.utils import Extractor

    model = onnx.load(str(path))
    graph = model.graph
    masks = {node.input[_ATTENTION_MASK_INPUT[node.op_type]] for node in graph.node
             if node.op_type in _ATTENTION_MASK_INPUT and len(node.input) > _ATTENTION_MASK_INPUT[node.op_type]}
    layer_outs = _layer_outputs(graph)
    n = len(layer_outs)
    if len(masks) != 1 or "" in masks or not 0 < upper_layers < n or \
            {i.name for i in graph.input} != {"input_ids", "attention_mask"}:
        return None
    mask_index = masks.pop()
    layer = n - upper_layers
    hidden = layer_outs[layer - 1]
    graph.value_info.extend([helper.make_tensor_value_info(hidden, TensorProto.FLOAT, None),
                             helper.make_tensor_value_info(mask_index, TensorProto.INT32, None)])
    upper = Extractor(model).extract_model([hidden, mask_index], ["logits"])
    if {i.name for i in upper.graph.input} != {hidden, mask_index}:
        return None  # the upper layers read something else from below (not a plain BERT encoder)
    if quantize_upper:
        upper = _quantized(upper)
    _last_layer_reads_cls_only(upper, n - 1)
    main_inits = {i.name: i for i in graph.initializer}
    produced = {out for node in upper.graph.node for out in node.output}
    own = set()  # initialisers of the copy that the served graph does not have (quantised weights and scales)
    for init in upper.graph.initializer:
        same = main_inits.get(init.name)
        if same is None or same.raw_data != init.raw_data or list(same.dims) != list(init.dims):
            own.add(init.name)
    rename = {hidden: CUT_HIDDEN, mask_index: CUT_LENGTHS, "logits": CUT_LOGITS}

    def renamed(name: str) -> str:
        return rename.get(name, f"cut/{name}" if name in produced or name in own else name)

    for init in upper.graph.initializer:
        if init.name in own:
            copy = onnx.TensorProto()
            copy.CopyFrom(init)
            copy.name = renamed(init.name)
            graph.initializer.append(copy)
    for node in upper.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"cut/{node.name}"
        del copy.input[:]
        copy.input.extend(renamed(x) if x else x for x in node.input)
        del copy.output[:]
        copy.output.extend(renamed(x) for x in node.output)
        graph.node.append(copy)
    opsets = {o.domain for o in model.opset_import}
    model.opset_import.extend(o for o in upper.opset_import if o.domain not in opsets)
    # Own dimension names: sharing "batch" with input_ids would tell ONNX Runtime the two are the same size.
    graph.input.extend([helper.make_tensor_value_info(CUT_HIDDEN, TensorProto.FLOAT,
                                                     ["cut_batch", "cut_tokens", "cut_dim"]),
                        helper.make_tensor_value_info(CUT_LENGTHS, TensorProto.INT32, ["cut_batch"])])
    # Defaults, so that the served call (input_ids and attention_mask only) stays valid.
    # ONNX Runtime runs every node on every call (it does not prune to the fetched outputs), so the defaults must be
    # valid: one token of the hidden size (the LayerNorm scale's length); on them the copy costs a fraction of a ms.
    inits = {i.name: i for i in graph.initializer}
    gamma = next(node.input[2] for node in graph.node if hidden in node.output)
    dim = int(np.prod(inits[gamma].dims)) if gamma in inits else None
    if not dim:
        return None
    graph.initializer.extend([numpy_helper.from_array(np.zeros((1, 1, dim), np.float32), CUT_HIDDEN),
                              numpy_helper.from_array(np.ones((1,), np.int32), CUT_LENGTHS)])
    graph.output.extend([helper.make_tensor_value_info(hidden, TensorProto.FLOAT, None),
                         helper.make_tensor_value_info(CUT_LOGITS, TensorProto.FLOAT, None)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # Written to a file and loaded from it: the serialised bytes of a 470 MB graph are not held in memory meanwhile.
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(model, f"{tmp}/cut.onnx")
        del model, graph, upper
        session = ort.InferenceSession(f"{tmp}/cut.onnx", opts, providers=["CPUExecutionProvider"])
    _give_back_freed_memory()
    return GraphCut(session, hidden, layer, n)


def _give_back_freed_memory() -> None:
    """Return the heap the parsed graph used to the OS (glibc keeps freed small blocks otherwise: ~100 MB of RSS
    for the fp32 e5-small graph). A no-op where there is no glibc."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _quantized(model):
    """``model`` with its weight MatMuls quantised by ``onnxruntime.quantization.quantize_dynamic`` (per channel)."""
    import logging
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # its advice to pre-process the graph, on the root logger, every time
    try:
        with tempfile.TemporaryDirectory() as tmp:
            onnx.save(model, f"{tmp}/upper.onnx")
            quantize_dynamic(f"{tmp}/upper.onnx", f"{tmp}/upper.int8.onnx", weight_type=QuantType.QInt8,
                             per_channel=True, op_types_to_quantize=["MatMul", "Attention"],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            return onnx.load(f"{tmp}/upper.int8.onnx")
    finally:
        logging.disable(previous)


def _last_layer_reads_cls_only(model, last: int) -> bool:
    """Rewire the copy's last layer to carry only the [CLS] row past its attention: the pooler reads nothing else,
    and everything after attention (output projection, feed-forward, LayerNorms) works row by row, so the other
    rows were computed and thrown away (about three quarters of that layer). Attention still reads every row's
    keys and values. False (the copy unchanged) where the expected nodes are not found."""
    from onnx import helper, numpy_helper

    graph = model.graph
    marker = f"layer.{last}/"
    attention = [i for i, node in enumerate(graph.node)
                 if node.op_type in _ATTENTION_MASK_INPUT and any(marker in o for o in node.output)]
    norms = [node for node in graph.node if node.op_type == "SkipLayerNormalization"
             and any(f"{marker}attention/output/LayerNorm/" in o for o in node.output)]
    if len(attention) != 1 or len(norms) != 1 or len(norms[0].input) < 2:
        return False
    at = attention[0]
    att_out, skip = graph.node[at].output[0], norms[0].input[1]
    index = "cut_cls_index"
    graph.initializer.append(numpy_helper.from_array(np.zeros((1,), np.int64), index))
    gathers = [helper.make_node("Gather", [att_out, index], [f"{att_out}/cls"], name="cut_cls_attention", axis=1),
               helper.make_node("Gather", [skip, index], [f"{skip}/cls"], name="cut_cls_residual", axis=1)]
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name == att_out:
                node.input[k] = f"{att_out}/cls"
    norms[0].input[1] = f"{skip}/cls"
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes[:at + 1] + gathers + nodes[at + 1:])  # still in topological order
    return True
