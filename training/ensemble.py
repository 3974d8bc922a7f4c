"""Average exported lip-sync models into one ONNX model (an output-averaging ensemble).

    python -m training.ensemble --out models/lipsync-v2.onnx --name lipsync-v2 a.onnx b.onnx

Every member reads the same `mel` window (float32 [N, past + ahead, 40], the engine contract of
models/README.md) and gives `mouth` (float32 [N, 4] in [0, 1]); the ensemble's `mouth` is their
mean, so it keeps the contract: still stateless (streaming equals batch), still in [0, 1], one
inference call per tick. Members must agree on the window and the feature spec. The graphs are
copied side by side into one (each member's names prefixed `m<i>/`) with an Add chain and one
Mul at the end; onnxruntime's result is then checked against the mean of the members run one by
one on real, random and silent windows (max abs difference <= 1e-5), and the file is refused
above 2 MB, as training.export refuses a single net.

Why an ensemble (models/README.md, "Two nets averaged"): a net trained with the Festival voices
follows unseen real voices better but loses held-out eSpeak languages; averaging it with the
net trained without them keeps both, where neither alone did.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

TOLERANCE = 1e-5
MAX_BYTES = 2 * 2**20
SHARED_META = ("dhlive.features", "dhlive.window_past", "dhlive.window_ahead", "dhlive.params")


def _meta(m: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in m.metadata_props}


def average(members: list[onnx.ModelProto], name: str, member_names: list[str] | None = None) -> onnx.ModelProto:
    """One model whose output is the mean of the members' outputs (see the module docstring).

    members: loaded ONNX models, each with one input `mel` and one output `mouth`, the same
    opset and the same SHARED_META values. name: its `dhlive.model`; member_names: what its
    `dhlive.members` lists (default: each member's own `dhlive.model`). Raises ValueError when
    the members differ or fewer than two are given."""
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    first = members[0]
    ref_meta = {k: _meta(first).get(k) for k in SHARED_META}
    for i, m in enumerate(members):
        g = m.graph
        if [x.name for x in g.input] != ["mel"] or [x.name for x in g.output] != ["mouth"]:
            raise ValueError(f"member {i}: expected one input 'mel' and one output 'mouth'")
        meta = {k: _meta(m).get(k) for k in SHARED_META}
        if meta != ref_meta:
            raise ValueError(f"member {i}: metadata {meta} differs from member 0's {ref_meta}")
        if list(m.opset_import) != list(first.opset_import):
            raise ValueError(f"member {i}: opset {m.opset_import} differs from member 0's")
    nodes, inits, outs = [], [], []
    for i, m in enumerate(members):
        g = m.graph
        pre = f"m{i}/"
        names = {t.name for t in g.initializer} | {o for n in g.node for o in n.output}

        def rn(x: str, names=names, pre=pre) -> str:
            return pre + x if x in names else x  # "mel" and empty (omitted) inputs stay

        for t in g.initializer:
            c = TensorProto()
            c.CopyFrom(t)
            c.name = rn(t.name)
            inits.append(c)
        for n in g.node:
            c = onnx.NodeProto()
            c.CopyFrom(n)
            c.name = pre + n.name
            c.input[:] = [rn(x) for x in n.input]
            c.output[:] = [rn(x) for x in n.output]
            nodes.append(c)
        outs.append(pre + "mouth")
    total = outs[0]
    for k, o in enumerate(outs[1:]):
        nodes.append(helper.make_node("Add", [total, o], [f"sum{k}"], name=f"ensemble/add{k}"))
        total = f"sum{k}"
    inits.append(helper.make_tensor("ensemble/scale", TensorProto.FLOAT, [], [1.0 / len(members)]))
    nodes.append(helper.make_node("Mul", [total, "ensemble/scale"], ["mouth"], name="ensemble/mean"))
    graph = helper.make_graph(nodes, "dhlive-lipsync-ensemble", [first.graph.input[0]],
                              [first.graph.output[0]], inits)
    out = helper.make_model(graph, opset_imports=first.opset_import, producer_name="dhlive-training")
    out.ir_version = first.ir_version
    if member_names is None:
        member_names = [_meta(m).get("dhlive.model", f"member{i}") for i, m in enumerate(members)]
    if len(member_names) != len(members):
        raise ValueError(f"{len(member_names)} member names for {len(members)} members")
    meta = {**ref_meta, "dhlive.model": name, "dhlive.kind": "trained",
            "dhlive.members": ",".join(member_names)}
    for k, v in meta.items():
        p = out.metadata_props.add()
        p.key, p.value = k, v
    out.doc_string = (f"dhlive {name}: mean of {len(members)} nets ({', '.join(member_names)}); "
                      "log-mel window -> open, spread, round, close (see models/README.md)")
    onnx.checker.check_model(out)
    return out


def check(path: str, member_paths: list[str], data: str | None) -> float:
    """Max abs difference between the ensemble at `path` and the mean of its members run one by
    one (onnxruntime, CPU) on windows from `data`'s eval_voices.npz (if given), random windows and
    digital silence. Raises SystemExit above TOLERANCE."""
    import onnxruntime as ort

    from dhlive_cli.features import LOG_FLOOR, N_MELS, model_windows

    def run(p, x):
        s = ort.InferenceSession(p, providers=["CPUExecutionProvider"])
        return s.run(["mouth"], {"mel": x})[0]

    meta = _meta(onnx.load(path))
    past, ahead = int(meta["dhlive.window_past"]), int(meta["dhlive.window_ahead"])
    T = past + ahead
    rng = np.random.default_rng(0)
    parts = [rng.uniform(LOG_FLOOR, 6.0, size=(256, T, N_MELS)), np.full((4, T, N_MELS), LOG_FLOOR)]
    if data and os.path.exists(f"{data}/eval_voices.npz"):
        d = np.load(f"{data}/eval_voices.npz")
        n0 = int(d["n_frames"][0])
        parts.insert(0, model_windows(d["mel"][: 4 * n0], n0, past, ahead))
    x = np.concatenate(parts).astype(np.float32)
    want = np.mean([run(p, x) for p in member_paths], axis=0)
    diff = float(np.max(np.abs(run(path, x) - want)))
    if diff > TOLERANCE:
        raise SystemExit(f"error: the ensemble's output differs from the members' mean by {diff:.2e}")
    return diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("members", nargs="+", help="exported member models (.onnx)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="lipsync-v2", help="dhlive.model metadata")
    ap.add_argument("--member-names", default="", help="comma-separated, for dhlive.members (default: theirs)")
    ap.add_argument("--data", default="build/lipsync/data", help="for the check's real windows")
    a = ap.parse_args()
    names = a.member_names.split(",") if a.member_names else None
    tmp = a.out + ".tmp"
    try:
        members = []
        for p in a.members:
            try:
                members.append(onnx.load(p))
            except OSError as e:
                raise SystemExit(f"error: {p}: {e.strerror or e}") from None
            except Exception as e:  # protobuf's DecodeError and kin: not an ONNX file
                raise SystemExit(f"error: {p}: not an ONNX model ({type(e).__name__})") from None
        try:
            model = average(members, a.name, names)
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
        onnx.save(model, tmp)
        diff = check(tmp, a.members, a.data)
        size = os.path.getsize(tmp)
        if size > MAX_BYTES:
            raise SystemExit(f"error: the ensemble is {size} bytes, above {MAX_BYTES}")
        os.replace(tmp, a.out)
    except OSError as e:
        raise SystemExit(f"error: {e.filename or a.out}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"ensemble {a.out}: {len(a.members)} members, {size} bytes ({size / 2**20:.2f} MiB); "
          f"max abs diff from the members' mean {diff:.2e} (tolerance {TOLERANCE:.0e})")


if __name__ == "__main__":
    main()
