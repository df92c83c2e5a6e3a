"""Writing a file into a tree without reading the whole tree (docs/decisions.md, "Sharded layout").

An index holds every file of the branch: adding one record through it costs
the size of the whole history. A tree builder per directory on the file's
path rewrites only those directories: in the sharded layout (model/layout.py)
about 256 + n/256 entries, whatever the history's length.
"""

from __future__ import annotations


def tree_with_files(repo, base_tree, files: dict[str, bytes]) -> str:
    """The id of `base_tree` (a pygit2 Tree, or None for an empty one) with `files` added or replaced."""
    tree_id = base_tree.id if base_tree is not None else None
    for path, data in files.items():
        tree_id = _put(repo, repo[tree_id] if tree_id is not None else None, path.split("/"), repo.create_blob(data))
    return str(tree_id)


def _put(repo, tree, parts: list[str], blob_id):
    import pygit2

    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    name = parts[0]
    if len(parts) == 1:
        builder.insert(name, blob_id, pygit2.enums.FileMode.BLOB)
    else:
        existing = builder.get(name)
        subtree = repo[existing.id] if existing is not None and existing.type_str == "tree" else None
        builder.insert(name, _put(repo, subtree, parts[1:], blob_id), pygit2.enums.FileMode.TREE)
    return builder.write()
