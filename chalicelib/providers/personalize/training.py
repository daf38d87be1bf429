"""Training on Amazon Personalize through the control plane: new solution versions (waited for,
then the campaigns of those solutions moved to them), their metrics, the versions of each
solution, and a campaign switched to a chosen version. The resources themselves are `setup`'s.
"""

from __future__ import annotations

from typing import Any

from chalicelib import aws
from chalicelib.config import ProjectConfig, Solution
from chalicelib.names import personalize_name
from chalicelib.providers.personalize.control import describing, find, pages
from chalicelib.providers.personalize.setup import ROUTE_RECIPES, Setup
from chalicelib.providers.personalize.shapes import epoch, pinned_version
from chalicelib.settings import Settings
from chalicelib.vocabulary import Progress, SolutionVersionInfo


def _info(client: Any, version_arn: str, solution: Solution) -> SolutionVersionInfo:
    version = client.describe_solution_version(solutionVersionArn=version_arn)["solutionVersion"]
    metrics: dict[str, float] = {}
    if version.get("status") == "ACTIVE":
        metrics = dict(client.get_solution_metrics(solutionVersionArn=version_arn)["metrics"])
    return SolutionVersionInfo(
        version_id=version_arn,
        solution=solution.name,
        recipe=solution.recipe,
        status=str(version.get("status")),
        metrics=metrics,
        counts={},
        training_seconds=round(float(version.get("trainingHours", 0.0)) * 3600, 1),
        created=epoch(version.get("creationDateTime")),
    )


def metrics(
    settings: Settings,
    config: ProjectConfig,
    solution: str | None = None,
    version_id: str | None = None,
) -> SolutionVersionInfo | None:
    """GetSolutionMetrics of a version: the one named, else `solution`'s newest ACTIVE one, else
    the one the recommendations campaign serves."""
    client = aws.client("personalize")
    route = config.campaigns.get("recommendations")
    chosen = config.solution(solution or (route.solution if route else config.solutions[0].name))
    if version_id is not None:
        return _info(client, version_id, _solution_of(config, version_id, chosen))
    if solution is None and settings.campaign_arn and ":campaign/" in settings.campaign_arn:
        campaign = client.describe_campaign(campaignArn=settings.campaign_arn)["campaign"]
        return _info(client, campaign["solutionVersionArn"], chosen)
    run = Setup(config)
    found = run.latest_version(run.find_solution(run.find_group(), chosen))
    return _info(client, found, chosen) if found else None


def _solution_of(config: ProjectConfig, version_arn: str, default: Solution) -> Solution:
    """`…:solution/GROUP-NAME/VERSION` names its solution."""
    for solution in config.solutions:
        if f":solution/{config.dataset_group.name}-{solution.name}/" in version_arn:
            return solution
    return default


def versions(config: ProjectConfig, solution: str | None = None) -> list[SolutionVersionInfo]:
    """Every version of the configured solutions (or one), newest first, metrics included."""
    run = Setup(config)
    group_arn = run.find_group()
    infos: list[SolutionVersionInfo] = []
    for sol in [config.solution(solution)] if solution else config.solutions:
        solution_arn = run.find_solution(group_arn, sol)
        found = pages(
            run.client.list_solution_versions, "solutionVersions", solutionArn=solution_arn
        )
        infos.extend(_info(run.client, v["solutionVersionArn"], sol) for v in found)
    return sorted(infos, key=lambda i: i.created, reverse=True)


def deploy(config: ProjectConfig, route: str, version_arn: str) -> str:
    """Make the route's campaign serve `version_arn` (UpdateCampaign); its ARN is returned."""
    campaign = next((c for name, c in config.campaigns.items() if name == route), None)
    if campaign is None:
        raise ValueError(f"no campaign {route!r} in the configuration")
    solution = config.solution(campaign.solution)
    if _solution_of(config, version_arn, solution).name != solution.name:
        raise ValueError(f"{version_arn!r} is not a version of solution {solution.name!r}")
    run = Setup(config)
    solution_arn = run.find_solution(run.find_group(), solution)
    name = personalize_name(run.group, route)
    found = find(pages(run.client.list_campaigns, "campaigns", solutionArn=solution_arn), name)
    if found is None:
        raise ValueError(f"no campaign {name!r}: run `python -m chalicelib setup`")
    run.client.update_campaign(campaignArn=found["campaignArn"], solutionVersionArn=version_arn)
    return str(found["campaignArn"])


def train(
    settings: Settings,
    config: ProjectConfig,
    solution: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> list[SolutionVersionInfo]:
    """A new FULL solution version of each solution (or one), waited for; then campaigns of those
    solutions that do not pin a version are moved to it (or created) by applying the setup."""
    run = Setup(config, progress, **options)
    group_arn = run.find_group()
    chosen = [config.solution(solution)] if solution else list(config.solutions)
    infos = []
    for sol in chosen:
        solution_arn = run.find_solution(group_arn, sol)
        version = run.client.create_solution_version(solutionArn=solution_arn, trainingMode="FULL")[
            "solutionVersionArn"
        ]
        describe = run.client.describe_solution_version
        run.wait(
            "solution version",
            version.rsplit("/", 1)[-1],
            describing(describe, "solutionVersion", solutionVersionArn=version),
        )
        infos.append(_info(run.client, version, sol))
        for route, campaign in config.campaigns.items():
            if campaign.solution != sol.name or pinned_version(campaign):
                continue
            name = personalize_name(run.group, route)
            campaigns = pages(run.client.list_campaigns, "campaigns", solutionArn=solution_arn)
            found = find(campaigns, name)
            if found is not None:
                run.client.update_campaign(
                    campaignArn=found["campaignArn"], solutionVersionArn=version
                )
                arn = found["campaignArn"]
                run.wait(
                    "campaign",
                    name,
                    describing(run.client.describe_campaign, "campaign", campaignArn=arn),
                )
            elif sol.recipe in ROUTE_RECIPES[route]:
                run.campaign(route, campaign, sol, solution_arn)
    return infos
