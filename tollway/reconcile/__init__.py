"""Config as code, importable without click (go-database-reconciler's shape):

    files.load_state(FILES)        file(s) → rendered, merged, validated desired Config
    client.AdminClient.running()   node → current Config (+ hash, revision)
    diff.plan(current, desired)    → events + the whole target document
    sync.apply_plan(client, plan)  → one POST /config: one atomic revision
    dump.dump(config)              → decK-style nested state file

plus the offline file tools (``patch``, ``tags``, ``openapi``, ``templates``), the router lint
(``lint``) and the
vault reference resolver the node calls on load (``vault.resolve_references``).
"""
