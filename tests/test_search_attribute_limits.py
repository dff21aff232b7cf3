"""What ``vend doctor`` says of a namespace's search attributes (units: the cluster tests run it
against SQL visibility for real, tests/cluster)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType

from activities.temporal_checks import SQL_CUSTOM_ATTRIBUTE_LIMITS, search_attribute_verdict
from common import search_attributes
from common.preflight import CheckStatus

KEYWORD = int(IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD)
TEXT = int(IndexedValueType.INDEXED_VALUE_TYPE_TEXT)
ALL = {k.name: KEYWORD for k in search_attributes.ALL}


def test_the_engines_attributes_fit_sql_visibility_with_room_to_spare() -> None:
    engine = len(search_attributes.ALL)
    assert engine < SQL_CUSTOM_ATTRIBUTE_LIMITS[KEYWORD]
    status, found, fix = search_attribute_verdict(ALL, "sql", "default")
    assert status == CheckStatus.ok and fix is None
    assert f"SQL visibility: {engine} of its 10 Keyword columns taken" in found


def test_missing_and_mistyped_attributes_are_told_apart_with_their_fixes() -> None:
    registered = {**ALL, "VendingOwner": TEXT}
    del registered["VendingDrift"]
    status, found, fix = search_attribute_verdict(registered, "elasticsearch", "ns")
    assert status == CheckStatus.failed
    assert found == "missing: VendingDrift; not Keyword: VendingOwner (TEXT)"
    assert fix is not None
    assert "search-attribute create --namespace ns --name VendingDrift --type Keyword" in fix
    assert "search-attribute remove --namespace ns --name VendingOwner" in fix


def test_a_namespace_whose_keyword_columns_are_taken_cannot_hold_the_engines() -> None:
    others = {f"Team{i}": KEYWORD for i in range(5)}
    registered = {**others, "VendingStatus": KEYWORD}
    status, found, _ = search_attribute_verdict(registered, "sql", "shared")
    assert status == CheckStatus.failed
    assert "6 are taken and the engine needs 7 more" in found
    # Elasticsearch has no such columns: the same namespace only misses attributes there.
    status, found, _ = search_attribute_verdict(registered, "elasticsearch", "shared")
    assert "SQL visibility" not in found
