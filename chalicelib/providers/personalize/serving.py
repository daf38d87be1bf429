"""The `personalize` provider's serving role: GetRecommendations (campaign or recommender ARN),
GetPersonalizedRanking, related items through the SIMS campaign, filters by ARN with values.

Braze waits about 2 s for a Connected Content answer. Each runtime call gets one attempt with
short socket timeouts (`chalicelib.aws`), and is retried here only while the request's budget
(`RECS_PERSONALIZE_BUDGET_MS`) still holds a whole attempt; past that, or on any error, the
answer is `Unanswered` with Personalize's reason, and the fallback policy serves the precomputed
popular list (cached in the container). Every such miss is counted as a CloudWatch embedded
metric (`Fallbacks`, by route and reason) in the logs. Nothing here imports numpy, scipy or the
local engine.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib import aws
from chalicelib.filters import CurrentItemFilterError, FilterRequest, UnknownFilterError
from chalicelib.filters.values import encode_filter_values, uses_current_item
from chalicelib.providers.personalize import arns, items_table
from chalicelib.providers.personalize.catalogue import TableCatalogue
from chalicelib.settings import Settings
from chalicelib.vocabulary import Answer, Recommendations, Unanswered

if TYPE_CHECKING:
    from chalicelib.config import ProjectConfig

log = logging.getLogger("recs.personalize")
METRIC_NAMESPACE = "BrazePersonalizeRecs"
MAX_RESULTS = 500  # GetRecommendations / GetPersonalizedRanking without metadata
MAX_RESULTS_WITH_METADATA = 50
# Error codes worth another attempt: throttling and the service's own failures.
RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestThrottledException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
    }
)


class Unavailable(Exception):
    """Personalize gave no usable answer in time; `reason` names why (for the metric)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _target(arn: str) -> dict[str, str]:
    """A domain recommender is called by `recommenderArn`, a custom campaign by `campaignArn`."""
    return {"recommenderArn": arn} if ":recommender/" in arn else {"campaignArn": arn}


class PersonalizeServing:
    name = "personalize"

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._clock, self._sleep = clock, sleep
        self._budget = settings.personalize_budget_ms / 1000
        connect, read, _ = aws.TIMEOUTS["personalize-runtime"]
        self._attempt_seconds = connect + read
        self._catalogue = TableCatalogue(
            settings.items_table,
            settings.item_url_template,
            settings.item_image_template,
            ttl=settings.catalogue_ttl,
            clock=clock,
        )
        self._lock = threading.Lock()
        self._popular: tuple[float, list[str]] = (float("-inf"), [])
        self._versions: dict[str, tuple[float, str | None]] = {}  # campaign ARN -> version
        # Calls Personalize did not answer, by route and reason (each is a served fallback).
        self.misses: Counter[str] = Counter()

    @property
    def config(self) -> ProjectConfig:
        """The configuration file, read on first need (a filter, a command), not on a cold start."""
        from chalicelib.config import load_config  # noqa: PLC0415 - cached by path

        return load_config(self.settings.config)

    # -- the runtime call --------------------------------------------------------------------

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """`operation` within the budget: retried on throttling or a network error only while a
        whole further attempt still fits."""
        from botocore.exceptions import (  # noqa: PLC0415 - boto3 loads on first use
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
        )

        client = aws.client("personalize-runtime")
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                answer: dict[str, Any] = getattr(client, operation)(**params)
                return answer
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "ClientError")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if code not in RETRYABLE and status != 429 and status < 500:
                    raise Unavailable(code) from exc
                reason = code
            except (ConnectionError, HTTPClientError) as exc:  # timeouts, resets, DNS
                reason = type(exc).__name__
            except BotoCoreError as exc:  # no credentials, bad parameters: retrying cannot help
                log.error("personalize %s failed: %s", operation, exc)
                raise Unavailable(type(exc).__name__) from exc
            # Full jitter on a short base: throttling clears in tens of milliseconds or not soon.
            pause = random.uniform(0, 0.05 * 2**attempt)
            remaining = self._budget - (self._clock() - started)
            if remaining < pause + self._attempt_seconds:
                raise Unavailable(reason)
            self._sleep(pause)

    def _missed(self, route: str, reason: str) -> Unanswered:
        """Count a call Personalize did not answer: one line of CloudWatch Embedded Metric Format
        on stdout, which CloudWatch turns into the `Fallbacks` metric with no API call (a logging
        prefix would stop the parsing)."""
        self.misses[f"{route}:{reason}"] += 1
        record = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": METRIC_NAMESPACE,
                        "Dimensions": [["Route"], ["Route", "Reason"]],
                        "Metrics": [{"Name": "Fallbacks", "Unit": "Count"}],
                    }
                ],
            },
            "Route": route,
            "Reason": reason,
            "Fallbacks": 1,
        }
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
        log.warning("personalize %s: fallback list served (%s)", route, reason)
        return Unanswered(reason)

    # -- request parameters ------------------------------------------------------------------

    def _filter_params(self, flt: FilterRequest | None) -> dict[str, Any]:
        """A bad filter or bad values are the caller's 400 (FilterError); a filter this stage
        cannot name (no RECS_DATASET_GROUP_ARN) makes the call unavailable, not a 400."""
        if flt is None:
            return {}
        expression = self.config.filters.get(flt.name)
        if expression is None:
            raise UnknownFilterError(flt.name, self.config.filters)
        if flt.current_item is None and uses_current_item(expression):
            # Personalize refuses it outside related items: the caller's 400, not a fallback.
            raise CurrentItemFilterError
        try:
            arn = arns.filter_arn(self.settings.dataset_group_arn, flt.name)
        except arns.MissingSettingError as exc:
            log.error("cannot call filter %s: %s", flt.name, exc)
            raise Unavailable("FilterNotConfigured") from exc
        params: dict[str, Any] = {"filterArn": arn}
        values = encode_filter_values(expression, flt.values)
        if values:
            params["filterValues"] = values
        return params

    def _metadata_params(self, count: int) -> dict[str, Any]:
        columns = self.settings.metadata_column_list
        if self.settings.decoration != "metadata" or not columns:
            return {}
        if count > MAX_RESULTS_WITH_METADATA:
            return {}  # Personalize refuses metadata on longer lists: decorate from the table
        return {"metadataColumns": {"ITEMS": columns}}

    def _collect(self, entries: Sequence[Mapping[str, Any]]) -> list[str]:
        ids = [e["itemId"] for e in entries]
        metadata = [(e["itemId"], e["metadata"]) for e in entries if e.get("metadata")]
        if metadata:
            self._catalogue.remember(metadata)
        return ids

    # -- serving -----------------------------------------------------------------------------

    def recommend(self, user_id: str, num_results: int, flt: FilterRequest | None) -> Answer:
        subject = {"userId": user_id}
        return self._recommendations("recommendations", subject, num_results, flt)

    def related_items(
        self, item_id: str, num_results: int, user_id: str | None, flt: FilterRequest | None
    ) -> Answer:
        subject = {"itemId": item_id}
        if user_id:
            subject["userId"] = user_id  # filters on the user's interactions need it
        return self._recommendations("related-items", subject, num_results, flt, item_id)

    def _recommendations(
        self,
        route: str,
        subject: dict[str, str],
        num_results: int,
        flt: FilterRequest | None,
        exclude: str | None = None,
    ) -> Answer:
        """GetRecommendations on the route's campaign; `Unanswered` whenever Personalize cannot
        answer with items the catalogue has."""
        settings = self.settings
        arn = (
            settings.campaign_arn
            if route == "recommendations"
            else settings.similar_items_campaign_arn
        )
        try:
            filter_params = self._filter_params(flt)
            if not arn:
                raise Unavailable("NotConfigured")
            count = min(num_results, MAX_RESULTS)
            params = {
                **_target(arn),
                **subject,
                "numResults": count,
                **filter_params,
                **self._metadata_params(count),
            }
            out = self._call("get_recommendations", params)
        except Unavailable as exc:
            return self._missed(route, exc.reason)
        returned = [i for i in self._collect(out.get("itemList", [])) if i != exclude]
        ids = self._catalogue.known(returned)
        if not ids and flt is None:
            reason = "NotInCatalogue" if returned else "EmptyList"
            return self._missed(route, reason)
        version = self._served_version(arn)
        return Recommendations(ids, "personalized", out.get("recommendationId"), None, version)

    def rank(self, user_id: str, item_ids: Sequence[str], flt: FilterRequest | None) -> Answer:
        arn = self.settings.ranking_campaign_arn
        try:
            filter_params = self._filter_params(flt)
            if not arn:
                raise Unavailable("NotConfigured")
            params = {
                "campaignArn": arn,
                "userId": user_id,
                "inputList": list(item_ids[:MAX_RESULTS]),
                **filter_params,
                **self._metadata_params(len(item_ids)),
            }
            out = self._call("get_personalized_ranking", params)
            ids = self._collect(out.get("personalizedRanking", []))
            version = self._served_version(arn)
            return Recommendations(ids, "personalized", out.get("recommendationId"), None, version)
        except Unavailable as exc:
            return self._missed("rankings", exc.reason)

    def popular(
        self, num_results: int, flt: FilterRequest | None, user_id: str | None = None
    ) -> list[str]:
        """The precomputed popular list (`python -m chalicelib popular`), cached for the TTL.

        Personalize filters cannot be evaluated outside Personalize, so `flt` is not applied.
        A failed refresh keeps serving the list already in memory.
        """
        stamp, items = self._popular
        now = self._clock()
        if now - stamp > self.settings.catalogue_ttl and self.settings.items_table:
            with self._lock:
                stamp, items = self._popular
                if now - stamp > self.settings.catalogue_ttl:
                    try:
                        items = items_table.get_popular(self.settings.items_table)
                    except Exception as exc:
                        log.warning("popular list unreadable (%s); keeping %d", exc, len(items))
                    self._popular = (now, items)
        return items[:num_results]

    def catalogue(self) -> TableCatalogue:
        return self._catalogue

    def health(self) -> dict[str, object]:
        campaigns = {
            "recommendations": self.settings.campaign_arn or None,
            "related-items": self.settings.similar_items_campaign_arn or None,
            "rankings": self.settings.ranking_campaign_arn or None,
        }
        return {
            "status": "ok",
            "provider": self.name,
            "model_version": self._model_version(),
            "campaigns": campaigns,
        }

    def _model_version(self, arn: str | None = None) -> str | None:
        """The solution version behind a campaign (the recommendations campaign by default):
        DescribeCampaign, cached for five minutes per campaign."""
        arn = self.settings.campaign_arn if arn is None else arn
        if not arn or ":recommender/" in arn:
            return None
        now = self._clock()
        cached = self._versions.get(arn)
        if cached is not None and now - cached[0] < 300:
            return cached[1]
        version: str | None = None
        try:
            client = aws.client("personalize", fast=True)
            campaign = client.describe_campaign(campaignArn=arn)["campaign"]
            version = campaign.get("solutionVersionArn")
        except Exception as exc:  # health must answer even when the control plane does not
            log.warning("DescribeCampaign failed: %s", exc)
        self._versions[arn] = (now, version)
        return version

    def _served_version(self, arn: str) -> str | None:
        """The version to keep with a served list: looked up only where lists are kept
        (RECS_SERVED_TABLE), so that a stage without the loop makes no control-plane call."""
        return self._model_version(arn) if self.settings.served_table else None
