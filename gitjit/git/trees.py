"""Writing a file into a tree without reading the whole tree (docs/decisions.md, "Sharded layout").

An index holds every file of the branch: adding one record through it costs
the size of the whole history. A tree builder per directory on the file's
path rewrites only those directories: in the sharded layout (model/layout.py)
about 256 + n/256 entries, whatever the history's length.
"""

from __future__ import annotations

from collections.abc import Mapping

from gitjit.namedtuple import TYPE_CHECKING

if TYPE_CHECKING:
    from pygit2 import Oid, Repository, Tree


def tree_with_files(repo: Repository, base_tree: Tree | None, files: Mapping[str, bytes | None]) -> str:
    """The id of `base_tree` (a pygit2 Tree, or None for an empty one) with `files` added, replaced or,
    where the value is None, deleted (a folder left empty goes too, as an index would write it)."""
    import pygit2

    tree_id = base_tree.id if base_tree is not None else None
    for path, data in files.items():
        blob_id = repo.create_blob(data) if data is not None else None
        tree = repo[tree_id].peel(pygit2.Tree) if tree_id is not None else None
        tree_id = _put(repo, tree, path.split("/"), blob_id)
        if tree_id is None:
            tree_id = repo.TreeBuilder().write()
    return str(tree_id)


def _put(repo: Repository, tree: Tree | None, parts: list[str], blob_id: Oid | None) -> Oid | None:
    """The tree with `blob_id` at `parts` (None: removed); None when the tree ends up empty."""
    import pygit2

    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    name = parts[0]
    existing = builder.get(name)
    if len(parts) == 1:
        if blob_id is not None:
            builder.insert(name, blob_id, pygit2.enums.FileMode.BLOB)
        elif existing is not None:
            builder.remove(name)
    else:
        subtree = repo[existing.id].peel(pygit2.Tree) if existing is not None and existing.type_str == "tree" else None
        if subtree is None and blob_id is None:
            return tree.id if tree is not None else None
        new_subtree = _put(repo, subtree, parts[1:], blob_id)
        if new_subtree is not None:
            builder.insert(name, new_subtree, pygit2.enums.FileMode.TREE)
        elif existing is not None:
            builder.remove(name)
    if len(builder) == 0:
        return None
    return builder.write()
