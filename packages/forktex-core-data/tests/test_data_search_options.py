# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Search options on Postgres and in memory alike: prefix terms (``acm*``), as-you-type
(``prefix=True``), accent folding chosen per register (``SearchConfig``), switching it on
an existing register (every row's words rebuilt), and bad input."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    Field,
    InvalidDefinition,
    InvalidQuery,
    MemoryRegister,
    Register,
    RegisterSource,
    RowQuery,
    SearchConfig,
)

FIELDS = [Field("name", "text"), Field("city", "text")]
ROWS = [
    {"name": "Crème Brûlée Café", "city": "Zürich"},
    {"name": "Acme Corporation", "city": "São Paulo"},
    {"name": "ACME consulting", "city": "Malmö"},
    {"name": "Creme brulee bar", "city": "Zurich"},
]
FOLD = SearchConfig(fold_accents=True)


@pytest.fixture(params=["postgres", "memory"])
async def make(request: pytest.FixtureRequest, engine: AsyncEngine) -> AsyncIterator[Any]:
    made: list[Register] = []

    async def build(config: SearchConfig | None = None) -> RegisterSource:
        if request.param == "memory":
            return MemoryRegister("places", FIELDS, rows=ROWS, search=config)
        reg = await Register.create("places", tenant_id=uuid.uuid4(), fields=FIELDS, search=config)
        await reg.insert_many(ROWS)
        made.append(reg)
        return reg

    yield build
    for reg in made:
        await reg.drop()


async def _names(source: RegisterSource, text: str, **kwargs: Any) -> list[str]:
    rows = await RowQuery(source).search(text, **kwargs).order_by("name").all()
    return [r["name"] for r in rows]


async def test_prefix_terms(make: Any) -> None:
    source = await make()
    assert await _names(source, "acm") == []
    assert await _names(source, "acm*") == ["ACME consulting", "Acme Corporation"]
    assert await _names(source, "acme co*") == ["ACME consulting", "Acme Corporation"]
    assert await _names(source, "acme cor*") == ["Acme Corporation"]
    assert await _names(source, '"acme cons*"') == []  # quotes: whole words only
    assert await _names(source, "acme-cons*") == ["ACME consulting"]  # a phrase's last word
    assert await _names(source, "-acm* cr*") == ["Creme brulee bar", "Crème Brûlée Café"]
    assert await _names(source, "zz* or malm*") == ["ACME consulting"]


async def test_as_you_type(make: Any) -> None:
    source = await make()
    assert await _names(source, "Acme Cor", prefix=True) == ["Acme Corporation"]
    assert await _names(source, "acme ", prefix=True) == ["ACME consulting", "Acme Corporation"]
    assert await _names(source, "cr", prefix=True) == ["Creme brulee bar", "Crème Brûlée Café"]
    assert await _names(source, "acme or", prefix=True) == []  # "or" alone is a word


async def test_accents_fold_per_register(make: Any) -> None:
    plain = await make()
    assert await _names(plain, "creme") == ["Creme brulee bar"]
    assert await _names(plain, "zürich") == ["Crème Brûlée Café"]
    folded = await make(FOLD)
    both = ["Creme brulee bar", "Crème Brûlée Café"]
    assert await _names(folded, "creme") == both
    assert await _names(folded, "CRÈME BRÛLÉE") == both
    assert await _names(folded, "zurich") == both
    assert await _names(folded, "sao paul*") == ["Acme Corporation"]
    assert await _names(folded, '"brulee cafe"') == ["Crème Brûlée Café"]


async def test_set_search_rebuilds_every_row(engine: AsyncEngine) -> None:
    reg = await Register.create("switch", tenant_id=uuid.uuid4(), fields=FIELDS)
    await reg.insert_many(ROWS)
    assert reg.search_config == SearchConfig()
    assert await RowQuery(reg).search("malmo").count() == 0
    await reg.set_search(FOLD)
    assert reg.search_config == FOLD
    assert await RowQuery(reg).search("malmo").count() == 1
    await reg.insert({"name": "Über", "city": "Köln"})  # new rows are folded too
    again = Register.load("switch", tenant_id=reg.tenant_id)
    assert await RowQuery(again).search("uber koln").count() == 1
    assert again.search_config == FOLD
    await reg.set_search(SearchConfig())
    assert await RowQuery(reg).search("uber").count() == 0
    with pytest.raises(InvalidDefinition, match="takes a SearchConfig"):
        await reg.set_search({"fold_accents": True})  # type: ignore[arg-type]
    await reg.drop()


async def test_bad_input(engine: AsyncEngine) -> None:
    with pytest.raises(TypeError, match="fold_accents must be True or False"):
        SearchConfig(fold_accents="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidDefinition, match="takes a SearchConfig"):
        MemoryRegister("m", FIELDS, search="fold")  # type: ignore[arg-type]
    with pytest.raises(InvalidDefinition, match="takes a SearchConfig"):
        await Register.create("bad", tenant_id=uuid.uuid4(), fields=FIELDS, search=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match=r"search\(prefix=\.\.\.\) takes True or False"):
        RowQuery(MemoryRegister("m", FIELDS)).search("x", prefix="yes")  # type: ignore[arg-type]


async def test_folded_search_agrees_on_random_text(engine: AsyncEngine) -> None:
    import random

    rng = random.Random(14)
    letters = "aeiouäéèêîôûüçñøåœßAEÉÈÎÔÜÇ"

    def word() -> str:
        return "".join(rng.choice(letters) for _ in range(rng.randint(1, 3)))

    rows = [{"name": " ".join(word() for _ in range(3)), "city": word()} for _ in range(60)]
    reg = await Register.create("random", tenant_id=uuid.uuid4(), fields=FIELDS, search=FOLD)
    inserted = await reg.insert_many(rows)
    mem = MemoryRegister(
        "random",
        FIELDS,
        rows=[{"id": r.id, **r.values} for r in inserted],
        search=FOLD,
    )
    matched = 0
    for _ in range(80):
        text = " ".join(
            word() + ("*" if rng.random() < 0.3 else "") for _ in range(rng.randint(1, 2))
        )
        prefix = rng.random() < 0.3
        found = []
        for source in (reg, mem):
            q = RowQuery(source).search(text, prefix=prefix).order_by("id")
            found.append([r.id for r in await q.all()])
        assert found[0] == found[1], (text, prefix)
        matched += len(found[0])
    assert matched > 0
    await reg.drop()
