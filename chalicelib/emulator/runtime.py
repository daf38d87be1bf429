"""personalize-runtime (GetRecommendations, GetPersonalizedRanking) and personalize-events
(PutEvents, PutUsers, PutItems) on the engine, with the service's rules: numResults up to 500
(50 with metadata), metadata only from a campaign that enables it, filters ACTIVE and of the
campaign's dataset group, the forbidden event property keys, properties matched to the schema.

Events go to the dataset group's store at once and a user-personalization campaign folds them
into that user's next recommendations, as the service does without retraining.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.catalogue import normalise
from chalicelib.emulator.errors import ServiceError, in_use, invalid, not_found
from chalicelib.emulator.groups import KINDS_OF_RECIPE, Group, Groups, field_of, schema_fields
from chalicelib.emulator.registry import ACTIVE, Registry
from chalicelib.filters import FilterError
from chalicelib.providers.local.served import ServedVersion

MAX_RESULTS, MAX_RESULTS_WITH_METADATA, MAX_METADATA_COLUMNS = 500, 50, 10
FORBIDDEN_PROPERTIES = {
    "userid",
    "sessionid",
    "eventtype",
    "timestamp",
    "recommendationid",
    "impression",
}
Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _recommendation_id() -> str:
    return f"RID-{uuid.uuid4()}"[:40]


class Runtime:
    def __init__(self, registry: Registry, groups: Groups) -> None:
        self.registry, self.groups = registry, groups
        self.handlers: dict[str, Handler] = {
            "GetRecommendations": self.get_recommendations,
            "GetPersonalizedRanking": self.get_personalized_ranking,
            "PutEvents": self.put_events,
            "PutUsers": self.put_users,
            "PutItems": self.put_items,
        }

    # -- runtime -----------------------------------------------------------------------------

    def _campaign(self, b: dict[str, Any]) -> tuple[dict[str, Any], Group, ServedVersion]:
        if "campaignArn" not in b:
            if "recommenderArn" in b:
                raise not_found(b["recommenderArn"])
            raise invalid("A campaignArn is required.")
        campaign = self.registry.get("Campaign", b["campaignArn"])
        if campaign["status"] != ACTIVE:
            raise invalid(f"Campaign {b['campaignArn']} is {campaign['status']}.")
        version = self.registry.get("SolutionVersion", campaign["solutionVersionArn"])
        group = self.groups.of(version["datasetGroupArn"])
        return campaign, group, group.served(version)

    def _columns(self, campaign: dict[str, Any], b: dict[str, Any]) -> list[str]:
        columns = list((b.get("metadataColumns") or {}).get("ITEMS", []))
        if b.get("metadataColumns") and set(b["metadataColumns"]) != {"ITEMS"}:
            raise invalid("metadataColumns takes the ITEMS dataset only.")
        if columns and not campaign["campaignConfig"].get("enableMetadataWithRecommendations"):
            raise invalid("The campaign does not have metadata enabled.")
        if len(columns) > MAX_METADATA_COLUMNS:
            raise invalid(f"At most {MAX_METADATA_COLUMNS} metadata columns may be requested.")
        return columns

    def _filter(self, b: dict[str, Any], group_arn: str) -> str | None:
        if not b.get("filterArn"):
            if b.get("filterValues"):
                raise invalid("filterValues need a filterArn.")
            return None
        flt = self.registry.get("Filter", b["filterArn"])
        if flt["status"] != ACTIVE:
            raise invalid(f"Filter {b['filterArn']} is {flt['status']}.")
        if flt["datasetGroupArn"] != group_arn:
            raise invalid("The filter belongs to another dataset group than the campaign.")
        return str(flt["filterExpression"])

    def _items(
        self, group: Group, ids: list[str], scores: list[Any], columns: list[str]
    ) -> list[dict[str, Any]]:
        out = []
        for item_id, score in zip(ids, scores, strict=False):
            entry: dict[str, Any] = {"itemId": item_id}
            if score is not None:
                entry["score"] = float(score)
            if columns:
                entry["metadata"] = group.metadata(item_id, columns)
            out.append(entry)
        return out

    def get_recommendations(self, b: dict[str, Any]) -> dict[str, Any]:
        campaign, group, served = self._campaign(b)
        columns = self._columns(campaign, b)
        n = b.get("numResults", 25)
        most = MAX_RESULTS_WITH_METADATA if columns else MAX_RESULTS
        if n > most:
            raise invalid(f"numResults must be at most {most}.")
        if b.get("promotions"):
            raise invalid("The emulator does not run promotions.")
        kinds = KINDS_OF_RECIPE[served.recipe]
        group_arn = self.registry.get("SolutionVersion", campaign["solutionVersionArn"])[
            "datasetGroupArn"
        ]
        expression = self._filter(b, group_arn)
        try:
            if "related" in kinds:
                if not b.get("itemId"):
                    raise invalid("An itemId is required for a related-items campaign.")
                mask = group.mask(served, expression, b.get("filterValues"), b.get("userId"))
                ids = group.related(served, b["itemId"], n, mask) or []
                scores: list[Any] = [None] * len(ids)
            elif "recommend" in kinds:
                if not b.get("userId"):
                    raise invalid("A userId is required for a user-personalization campaign.")
                mask = group.mask(served, expression, b.get("filterValues"), b["userId"])
                ranked = group.recommend(served, b["userId"], n, mask)
                ids, scores = ranked.item_ids, ranked.scores
            else:
                raise invalid("A PERSONALIZED_RANKING campaign answers GetPersonalizedRanking.")
        except FilterError as exc:
            raise invalid(str(exc)) from None
        return {
            "itemList": self._items(group, ids, scores, columns),
            "recommendationId": _recommendation_id(),
        }

    def get_personalized_ranking(self, b: dict[str, Any]) -> dict[str, Any]:
        campaign, group, served = self._campaign(b)
        columns = self._columns(campaign, b)
        most = MAX_RESULTS_WITH_METADATA if columns else MAX_RESULTS
        if len(b["inputList"]) > most:
            raise invalid(f"inputList takes at most {most} items.")
        if "rank" not in KINDS_OF_RECIPE[served.recipe]:
            raise invalid(f"A {served.recipe} campaign does not rank items.")
        group_arn = self.registry.get("SolutionVersion", campaign["solutionVersionArn"])[
            "datasetGroupArn"
        ]
        expression = self._filter(b, group_arn)
        try:
            mask = group.mask(served, expression, b.get("filterValues"), b["userId"])
        except FilterError as exc:
            raise invalid(str(exc)) from None
        ranked = group.rank(served, b["userId"], b["inputList"], mask)
        return {
            "personalizedRanking": self._items(group, ranked.item_ids, ranked.scores, columns),
            "recommendationId": _recommendation_id(),
        }

    # -- events ------------------------------------------------------------------------------

    def put_events(self, b: dict[str, Any]) -> dict[str, Any]:
        trackers = [
            t for t in self.registry.all("EventTracker") if t["trackingId"] == b["trackingId"]
        ]
        if not trackers or trackers[0]["status"] != ACTIVE:
            raise ServiceError(
                "ResourceNotFoundException", f"No active event tracker {b['trackingId']}."
            )
        rows = []
        for n, event in enumerate(b["eventList"]):
            properties = event.get("properties")
            if properties is not None:
                parsed = _json_object(properties, f"eventList[{n}].properties")
                bad = [k for k in parsed if k.lower() in FORBIDDEN_PROPERTIES]
                if bad:
                    raise invalid(f"eventList[{n}].properties may not contain {bad[0]}.")
            rows.append(
                {
                    "user_id": b.get("userId") or b["sessionId"],
                    "session_id": b["sessionId"],
                    "item_id": event.get("itemId") or "",
                    "event_type": event["eventType"],
                    "event_value": event.get("eventValue"),
                    "ts": float(event["sentAt"]),
                    "event_id": event.get("eventId") or str(uuid.uuid4()),
                    "recommendation_id": event.get("recommendationId"),
                    "impression": "|".join(event["impression"]) if "impression" in event else None,
                    "properties": properties,
                }
            )
        self.groups.of(trackers[0]["datasetGroupArn"]).store.add_events(rows)
        return {}

    def _records(self, b: dict[str, Any], kind: str, key: str, id_key: str) -> None:
        dataset = self.registry.get("Dataset", b["datasetArn"])
        if dataset["datasetType"] != kind.upper():
            raise invalid(f"{b['datasetArn']} is not a {kind} dataset.")
        if dataset["status"] != ACTIVE:
            raise in_use(f"{b['datasetArn']} is {dataset['status']}.")
        schema = schema_fields(
            json.loads(self.registry.get("Schema", dataset["schemaArn"])["schema"])
        )
        rows = []
        for n, record in enumerate(b[key]):
            properties = _json_object(record["properties"], f"{key}[{n}].properties")
            fields = {field_of(k): v for k, v in properties.items()}
            unknown = [k for k in fields if k not in schema]
            if unknown:
                raise invalid(f"{key}[{n}].properties: {unknown[0]} is not in the schema.")
            rows.append((record[id_key], normalise(fields) if kind == "items" else fields))
        self.groups.of(dataset["datasetGroupArn"]).store.upsert(kind, rows, merge=False)

    def put_users(self, b: dict[str, Any]) -> dict[str, Any]:
        self._records(b, "users", "users", "userId")
        return {}

    def put_items(self, b: dict[str, Any]) -> dict[str, Any]:
        self._records(b, "items", "items", "itemId")
        return {}


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError:
        raise invalid(f"{where} is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise invalid(f"{where} must be a JSON object.")
    return parsed
