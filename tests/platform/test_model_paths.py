"""Model paths only under the model roots, with one message for every refusal (finding 7 of
the hardening issue: a lead could map the server's folders by the errors for a model path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.platform.config import get_settings
from app.platform.errors import InvalidInput
from app.platform.model_paths import allowed_model_path
from app.platform.vectors.models import bundled_model_path
from tests.factories import make_dataset, make_token


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """One model root, `tmp_path/models`, with a model folder in it."""
    root = tmp_path / "models"
    (root / "tiny").mkdir(parents=True)
    (root / "tiny" / "config.json").write_text("{}")
    monkeypatch.setenv("SIFT_MODEL_ROOTS", str(root))
    get_settings.cache_clear()
    yield root
    monkeypatch.undo()
    get_settings.cache_clear()


def _refusal(value: str) -> str:
    with pytest.raises(InvalidInput) as refused:
        allowed_model_path(value)
    return refused.value.message.replace(value, "PATH")


def test_paths_under_a_root_are_allowed(roots: Path) -> None:
    assert allowed_model_path(str(roots / "tiny")) == (roots / "tiny").resolve()
    assert allowed_model_path(str(roots / "not-yet")) == (roots / "not-yet").resolve()
    # The packages Sift knows are always allowed.
    assert allowed_model_path(str(bundled_model_path())) == bundled_model_path().resolve()


def test_every_refusal_reads_the_same(roots: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (roots / "escape").symlink_to(outside)
    refusals = {
        _refusal(value)
        for value in (
            "/etc",
            "/no/such/folder",
            str(outside),
            str(roots / ".." / "elsewhere"),
            str(roots / "escape"),  # a link inside a root that leads out of it
            "x" * 5000,
        )
    }
    assert len(refusals) == 1
    assert str(roots) in refusals.pop()


def test_the_api_refuses_a_model_outside_the_roots_the_same_way(
    client: TestClient, session: Session, roots: Path
) -> None:
    _, lead = make_token(session, "lead")
    url = f"/api/v1/datasets/{make_dataset(session).name}/scores"
    answers = []
    for model in ("/etc", "/no/such/folder", "/usr/lib"):
        response = client.post(url, json={"scorer": "deita-quality", "model": model}, headers=lead)
        assert response.status_code == 422
        answers.append(response.json()["error"].replace(model, "PATH"))
    assert len(set(answers)) == 1 and "SIFT_MODEL_ROOTS" in answers[0]
    embed = client.post(
        url.replace("/scores", "/embeddings"), json={"model": "/usr/lib"}, headers=lead
    )
    assert embed.status_code == 422 and "SIFT_MODEL_ROOTS" in embed.text
