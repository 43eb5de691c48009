"""Where swap jobs run: each backend builds the blob store, the engine a bot submits to and,
where jobs run in other processes, the worker (`registry.py` lists them)."""
