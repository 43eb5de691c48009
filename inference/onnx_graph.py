"""Reading the inputs and outputs of an ONNX graph (shared by the learned models)."""

import onnx


def graph_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Real inputs (old exports also list their initializers as inputs)."""
    constants = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in constants]


def tensor_dims(value: onnx.ValueInfoProto) -> list[int | str]:
    """A tensor's shape: ints for fixed dimensions, names for symbolic ones."""
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in value.type.tensor_type.shape.dim]


def make_batch_symbolic(model: onnx.ModelProto, name: str = "N") -> bool:
    """Rename a batch dimension fixed to 1 to the symbol `name` on every input and output,
    in place, and drop the intermediate shapes recorded with batch 1 (onnxruntime infers
    them again). False, and the model untouched, when some batch dimension is neither 1
    nor symbolic.
    """
    values = graph_inputs(model.graph) + list(model.graph.output)
    firsts = [tensor_dims(v)[0] if tensor_dims(v) else None for v in values]
    if any(d is None or (isinstance(d, int) and d != 1) for d in firsts):
        return False
    for value in values:
        dim = value.type.tensor_type.shape.dim[0]
        if not dim.HasField("dim_param"):
            dim.dim_param = name  # replaces dim_value: they share a oneof
    del model.graph.value_info[:]
    return True
