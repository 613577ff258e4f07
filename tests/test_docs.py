"""The user guide stays true to the code: its key table is the schema's, and every document it links exists."""
from __future__ import annotations

import re
from pathlib import Path

from zsdist.schema import markdown_table
from zsdist.workflow import Job, Workflow

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_key_table_is_generated_from_the_schema():
    readme = (REPO / "README.md").read_text()
    for cls, heading in ((Workflow, "[run]"), (Job, "[[jobs]]")):
        assert markdown_table(cls, heading) in readme


def test_every_linked_document_exists():
    for doc in ("README.md", "CONTRIBUTING.md", *(p.relative_to(REPO) for p in (REPO / "docs").glob("*.md"))):
        text = (REPO / doc).read_text()
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", text):
            assert (REPO / Path(doc).parent / target).is_file(), f"{doc} links {target}, which does not exist"


def test_every_shipped_workflow_is_valid():
    """Each file under workflows/ loads; one that needs data not embedded here says which command fetches it."""
    from zsdist.errors import ZsdistError
    from zsdist.search.spec import load_search
    from zsdist.workflow import load_workflow

    files = sorted((REPO / "workflows").glob("*.toml"))
    assert len(files) >= 5
    for path in files:
        load = load_search if "[search]" in path.read_text() else load_workflow
        try:
            assert load(str(path)).run_id
        except ZsdistError as exc:
            assert "zsdist data fetch" in str(exc), f"{path.name}: {exc}"
