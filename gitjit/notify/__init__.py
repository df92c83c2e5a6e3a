"""Notifications from the server (SPEC s.14): who must act on a request, told after each push.

- `config.py`: the endpoints, from the server repository's git config;
- `events.py`: the events an accepted push produced, as versioned JSON;
- `formats.py`: an event as the body an endpoint expects (json, slack);
- `queue.py`: the spool under `$GIT_DIR/gitjit/notify/`, one file per event and endpoint;
- `deliver.py`: sending what is spooled (HTTP POST or a command), within a time budget;
- `post_receive.py`: the post-receive hook: spool, then send in a detached process;
- the post-receive script is `server/templates/post-receive.sh`, installed by `gitjit hook install`.

Nothing here can refuse or slow a push: a post-receive runs after the refs
moved, and every failure ends up queued or failed with its reason, shown by
`gitjit notify status`.
"""
