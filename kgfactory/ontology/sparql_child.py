"""The isolated SPARQL parse check: a child process (run by path, stdlib and pyoxigraph only) that parses and
plans each query it is sent on an empty store, so a parser crash or a planner blow-up costs only this process.

Protocol, one JSON object a line: in {"q", "prefixes", "timeout"}; out {"ok": true} or {"syntax": message}. The parent kills it when it does not answer in time; it
also ends itself past the timeout (the parent may be gone) and when its stdin closes.
"""
import json
import os
import resource
import sys
import threading

STACK_BYTES = 8 << 20  # half the evaluating thread's stack in the parent (ontology/sparql.py EVAL_STACK_BYTES)


def main() -> None:
    memory = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if memory:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ValueError, OSError):  # not enforced everywhere (macOS); the parent's timeout still holds
            pass
    import pyoxigraph as ox

    threading.stack_size(STACK_BYTES)
    store = ox.Store()
    for line in sys.stdin:
        req = json.loads(line)
        box: dict = {}

        def work() -> None:
            try:  # parses and plans (the dataset is empty either way); nothing is iterated
                store.query(req["q"], prefixes=req.get("prefixes") or None, use_default_graph_as_union=True)
                box["reply"] = {"ok": True}
            except SyntaxError as e:
                box["reply"] = {"syntax": str(e)}
            except Exception:  # planned; evaluating on an empty store failed, which says nothing about the query
                box["reply"] = {"ok": True}

        th = threading.Thread(target=work, daemon=True)
        th.start()
        th.join(float(req.get("timeout", 5.0)) + 1.0)
        if th.is_alive():
            os._exit(3)
        sys.stdout.write(json.dumps(box["reply"]) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
