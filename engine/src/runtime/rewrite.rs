//! Load-time graph rewrite: every `PRelu(x, slope)` becomes `Max(x, 0) + slope · Min(x, 0)`.
//!
//! Why: ONNX Runtime 1.28–1.32's CPU `PRelu` kernel is about five times slower than 1.24's (ORT's own
//! profiler on MiniFASNetV2: 3.1–3.3 ms of PRelu per run against 0.5–0.7 ms), which made the
//! liveness models twice as slow. The four element-wise ops run at full speed, and the values are
//! the same for finite slopes, up to the sign of a zero: for `x > 0` it is `x + slope · 0 = x`, for
//! `x < 0` it is `0 + slope · x`, the very product `PRelu` computes (the liveness scores of the real
//! models are compared bit for bit in `tests/face_pipeline.rs`). Only models whose default opset is at
//! least 8 are rewritten (`Max` and `Min` broadcast from opset 8 on).
//!
//! The rewrite works on the protobuf wire format directly (no ONNX schema is compiled in): the
//! model's graph field and the graph's node fields are walked, `PRelu` nodes are replaced, and
//! every other byte is copied as it was. The manifest's checksum is verified on the file before
//! this runs, and a rewritten graph ONNX Runtime refuses (say `PRelu` on half floats, or a model
//! below opset 8, where `Max` does not broadcast) is dropped for the file as it is.

/// The model with its `PRelu` nodes rewritten, or `None` if it has none (or is not a model this
/// walker understands, in which case ONNX Runtime gets the original bytes and says what is wrong).
pub fn prelu_as_max_min(model: &[u8]) -> Option<Vec<u8>> {
    if default_opset(model)? < 8 {
        return None;
    }
    let mut out = Vec::with_capacity(model.len() + 4096);
    let mut changed = false;
    for field in Fields::new(model) {
        let field = field?;
        match (field.number, &field.value) {
            (MODEL_GRAPH, Value::Bytes(graph)) => match rewrite_graph(graph)? {
                Some(new) => {
                    put_bytes(&mut out, MODEL_GRAPH, &new);
                    changed = true;
                }
                None => out.extend_from_slice(field.raw),
            },
            _ => out.extend_from_slice(field.raw),
        }
    }
    changed.then_some(out)
}

/// The version of the default ONNX operator set the model imports (`None` if it names none).
fn default_opset(model: &[u8]) -> Option<u64> {
    let mut found = None;
    for field in Fields::new(model) {
        let field = field?;
        let (MODEL_OPSET_IMPORT, Value::Bytes(set)) = (field.number, field.value) else {
            continue;
        };
        let (mut domain, mut version) = (None, None);
        for f in Fields::new(set) {
            match f? {
                Field {
                    number: OPSET_DOMAIN,
                    value: Value::Bytes(d),
                    ..
                } => domain = Some(d),
                Field {
                    number: OPSET_VERSION,
                    value: Value::Varint(v),
                    ..
                } => version = Some(v),
                _ => {}
            }
        }
        if matches!(domain, None | Some(b"") | Some(b"ai.onnx")) {
            found = version;
        }
    }
    found
}

const MODEL_GRAPH: u64 = 7;
const MODEL_OPSET_IMPORT: u64 = 8;
const OPSET_DOMAIN: u64 = 1;
const OPSET_VERSION: u64 = 2;
const GRAPH_NODE: u64 = 1;
const NODE_INPUT: u64 = 1;
const NODE_OUTPUT: u64 = 2;
const NODE_NAME: u64 = 3;
const NODE_OP_TYPE: u64 = 4;
const NODE_ATTRIBUTE: u64 = 5;
const NODE_DOMAIN: u64 = 7;
const ATTR_NAME: u64 = 1;
const ATTR_TENSOR: u64 = 5;
const ATTR_TYPE: u64 = 20;
const ATTR_TYPE_TENSOR: u64 = 4;
const TENSOR_DATA_TYPE: u64 = 2;
const TENSOR_FLOAT_DATA: u64 = 4;
const TENSOR_NAME: u64 = 8;
const TENSOR_FLOAT: u64 = 1;

/// The scalar 0.0 every rewritten node compares with (one Constant node, emitted before its first use).
const ZERO: &str = "sinhtrac_prelu_zero";

fn rewrite_graph(graph: &[u8]) -> Option<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(graph.len() + 4096);
    let mut zero_emitted = false;
    for field in Fields::new(graph) {
        let field = field?;
        let prelu = match (field.number, &field.value) {
            (GRAPH_NODE, Value::Bytes(node)) => as_prelu(node)?,
            _ => None,
        };
        let Some((x, slope, y)) = prelu else {
            out.extend_from_slice(field.raw);
            continue;
        };
        if !zero_emitted {
            put_bytes(&mut out, GRAPH_NODE, &zero_constant());
            zero_emitted = true;
        }
        let (pos, neg, scaled) = (
            format!("{y}__sinhtrac_pos"),
            format!("{y}__sinhtrac_neg"),
            format!("{y}__sinhtrac_scaled"),
        );
        for (op, inputs, output) in [
            ("Max", [x.as_str(), ZERO], pos.as_str()),
            ("Min", [x.as_str(), ZERO], neg.as_str()),
            ("Mul", [neg.as_str(), slope.as_str()], scaled.as_str()),
            ("Add", [pos.as_str(), scaled.as_str()], y.as_str()),
        ] {
            put_bytes(&mut out, GRAPH_NODE, &node(op, &inputs, output, &[]));
        }
    }
    Some(zero_emitted.then_some(out))
}

/// `(x, slope, y)` of a default-domain `PRelu` node, `None` for any other node.
fn as_prelu(node: &[u8]) -> Option<Option<(String, String, String)>> {
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    let (mut op, mut domain, mut attributes) = (None, None, 0);
    for field in Fields::new(node) {
        let field = field?;
        match (field.number, field.value) {
            (NODE_INPUT, Value::Bytes(b)) => inputs.push(String::from_utf8(b.to_vec()).ok()?),
            (NODE_OUTPUT, Value::Bytes(b)) => outputs.push(String::from_utf8(b.to_vec()).ok()?),
            (NODE_OP_TYPE, Value::Bytes(b)) => op = Some(b),
            (NODE_DOMAIN, Value::Bytes(b)) => domain = Some(b),
            (NODE_ATTRIBUTE, _) => attributes += 1,
            _ => {}
        }
    }
    let default_domain = matches!(domain, None | Some(b"") | Some(b"ai.onnx"));
    if op != Some(b"PRelu".as_slice()) || !default_domain || attributes > 0 {
        return Some(None);
    }
    match (inputs.as_slice(), outputs.as_slice()) {
        ([x, slope], [y]) => Some(Some((x.clone(), slope.clone(), y.clone()))),
        _ => Some(None),
    }
}

fn zero_constant() -> Vec<u8> {
    let mut tensor = Vec::new();
    put_varint_field(&mut tensor, TENSOR_DATA_TYPE, TENSOR_FLOAT);
    put_bytes(&mut tensor, TENSOR_FLOAT_DATA, &0.0f32.to_le_bytes());
    put_bytes(&mut tensor, TENSOR_NAME, ZERO.as_bytes());
    let mut attr = Vec::new();
    put_bytes(&mut attr, ATTR_NAME, b"value");
    put_bytes(&mut attr, ATTR_TENSOR, &tensor);
    put_varint_field(&mut attr, ATTR_TYPE, ATTR_TYPE_TENSOR);
    node("Constant", &[], ZERO, &[attr])
}

fn node(op: &str, inputs: &[&str], output: &str, attributes: &[Vec<u8>]) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        put_bytes(&mut n, NODE_INPUT, i.as_bytes());
    }
    put_bytes(&mut n, NODE_OUTPUT, output.as_bytes());
    put_bytes(&mut n, NODE_NAME, format!("{output}__node").as_bytes());
    put_bytes(&mut n, NODE_OP_TYPE, op.as_bytes());
    for a in attributes {
        put_bytes(&mut n, NODE_ATTRIBUTE, a);
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, number: u64, v: u64) {
    put_varint(out, number << 3);
    put_varint(out, v);
}

fn put_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_varint(out, (number << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

enum Value<'a> {
    Varint(u64),
    Fixed,
    Bytes(&'a [u8]),
}

struct Field<'a> {
    number: u64,
    value: Value<'a>,
    /// The whole field as encoded (key and value), to copy unchanged.
    raw: &'a [u8],
}

/// The fields of one protobuf message; `None` on malformed input.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<Field<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let field = (|| {
            let key = self.varint()?;
            let value = match key & 7 {
                0 => Value::Varint(self.varint()?),
                1 => self.take(8).map(|_| Value::Fixed)?,
                2 => {
                    let n = usize::try_from(self.varint()?).ok()?;
                    Value::Bytes(self.take(n)?)
                }
                5 => self.take(4).map(|_| Value::Fixed)?,
                _ => return None,
            };
            Some(Field {
                number: key >> 3,
                value,
                raw: &self.buf[start..self.pos],
            })
        })();
        if field.is_none() {
            // Stop after a malformed field: the caller gives up on the whole model.
            self.pos = self.buf.len();
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_with(nodes: &[Vec<u8>]) -> Vec<u8> {
        let mut graph = Vec::new();
        for n in nodes {
            put_bytes(&mut graph, GRAPH_NODE, n);
        }
        put_bytes(&mut graph, 2, b"g"); // graph name, kept as it is
        model_at_opset(&graph, 13)
    }

    fn model_at_opset(graph: &[u8], opset: u64) -> Vec<u8> {
        let mut set = Vec::new();
        put_bytes(&mut set, OPSET_DOMAIN, b"");
        put_varint_field(&mut set, OPSET_VERSION, opset);
        let mut model = Vec::new();
        put_varint_field(&mut model, 1, 7); // ir_version
        put_bytes(&mut model, MODEL_GRAPH, graph);
        put_bytes(&mut model, MODEL_OPSET_IMPORT, &set);
        model
    }

    fn ops(model: &[u8]) -> Vec<String> {
        let graph = Fields::new(model)
            .map(Option::unwrap)
            .find(|f| f.number == MODEL_GRAPH)
            .map(|f| match f.value {
                Value::Bytes(b) => b,
                _ => panic!("graph is not bytes"),
            })
            .unwrap();
        Fields::new(graph)
            .map(Option::unwrap)
            .filter(|f| f.number == GRAPH_NODE)
            .map(|f| match f.value {
                Value::Bytes(b) => Fields::new(b)
                    .map(Option::unwrap)
                    .find(|x| x.number == NODE_OP_TYPE)
                    .map(|x| match x.value {
                        Value::Bytes(s) => String::from_utf8(s.to_vec()).unwrap(),
                        _ => unreachable!(),
                    })
                    .unwrap(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn prelu_nodes_become_max_min_mul_add_and_the_rest_is_kept() {
        let model = model_with(&[
            node("Conv", &["x", "w"], "c", &[]),
            node("PRelu", &["c", "s1"], "p", &[]),
            node("PRelu", &["p", "s2"], "q", &[]),
        ]);
        let new = prelu_as_max_min(&model).expect("rewritten");
        assert_eq!(
            ops(&new),
            ["Conv", "Constant", "Max", "Min", "Mul", "Add", "Max", "Min", "Mul", "Add"]
        );
        // The first field (ir_version) is copied byte for byte.
        assert_eq!(new[..2], model[..2]);
    }

    #[test]
    fn models_without_prelu_or_malformed_are_left_alone() {
        let plain = model_with(&[node("Relu", &["x"], "y", &[])]);
        assert!(prelu_as_max_min(&plain).is_none());
        let mut truncated = model_with(&[node("PRelu", &["x", "s"], "y", &[])]);
        truncated.truncate(truncated.len() - 3);
        assert!(prelu_as_max_min(&truncated).is_none());
        assert!(prelu_as_max_min(&[0xff, 0xff, 0xff]).is_none());
        // Below opset 8 Max and Min do not broadcast: such a model keeps its PRelu.
        let mut graph = Vec::new();
        put_bytes(
            &mut graph,
            GRAPH_NODE,
            &node("PRelu", &["x", "s"], "y", &[]),
        );
        assert!(prelu_as_max_min(&model_at_opset(&graph, 7)).is_none());
        assert!(prelu_as_max_min(&model_at_opset(&graph, 8)).is_some());
        assert!(prelu_as_max_min(&[]).is_none());
    }
}
