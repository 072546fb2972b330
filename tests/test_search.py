"""Search over 1,000 trial components: Filters, NestedFilters and SubExpressions with And/Or, sorting on
metrics, parameters and CreationTime in both orders, and pagination; every answer is checked against
the same selection computed here from the data the test created."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from .helpers import error_of, unique

COUNT = 1000
OPTIMIZERS = ("adam", "sgd", "rmsprop")


def _has_loss(i: int) -> bool:
    return i % 7 != 0


def _loss_max(i: int) -> float:
    return float((i * 37) % COUNT)  # distinct for every i, not in creation order


@pytest.fixture(scope="module")
def population(sagemaker_client, sagemaker_metrics_client):
    """1,000 components of one experiment, in two trials; Parameters lr/opt, a `team` tag on the odd ones,
    a `loss` metric (two points) on those with i % 7 != 0."""
    sm = sagemaker_client
    experiment = unique("search-exp")
    sm.create_experiment(ExperimentName=experiment)
    trials = [f"{experiment}-t{k}" for k in range(2)]
    for trial in trials:
        sm.create_trial(TrialName=trial, ExperimentName=experiment)
    names = [f"{experiment}-tc-{i:04d}" for i in range(COUNT)]
    for i, name in enumerate(names):  # in order: CreationTime follows i
        sm.create_trial_component(
            TrialComponentName=name, DisplayName=f"group-{i % 10}",
            Parameters={"lr": {"NumberValue": round(i / COUNT, 4)}, "opt": {"StringValue": OPTIMIZERS[i % 3]}},
            **({"Tags": [{"Key": "team", "Value": "a" if i % 4 == 1 else "b"}]} if i % 2 else {}))
    now = dt.datetime.now(dt.timezone.utc)

    def complete(i: int) -> None:
        sm.associate_trial_component(TrialComponentName=names[i], TrialName=trials[i % 2])
        if _has_loss(i):
            sagemaker_metrics_client.batch_put_metrics(TrialComponentName=names[i], MetricData=[
                {"MetricName": "loss", "Value": _loss_max(i) / 2, "Timestamp": now, "Step": 0},
                {"MetricName": "loss", "Value": _loss_max(i), "Timestamp": now, "Step": 1}])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(complete, range(COUNT)))
    return experiment, trials, names


def _everything(sm, expression, page=100, **sort):
    """Every result of a search, page by page; checks TotalHits and NextToken on the way."""
    names, token, total = [], None, None
    while True:
        reply = sm.search(Resource="ExperimentTrialComponent", SearchExpression=expression, MaxResults=page,
                          **sort, **({"NextToken": token} if token else {}))
        assert len(reply["Results"]) <= page
        names += [r["TrialComponent"]["TrialComponentName"] for r in reply["Results"]]
        total = reply["TotalHits"]["Value"]
        token = reply.get("NextToken")
        if not token:
            break
        assert len(reply["Results"]) == page
    assert total == len(names)
    return names


def _in(experiment: str) -> dict:
    return {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": experiment}


def test_nested_filters_sub_expressions_and_or(sagemaker_client, population):
    experiment, trials, names = population
    expression = {
        "Filters": [_in(experiment)],
        "NestedFilters": [{"NestedPropertyName": "Metrics", "Filters": [
            {"Name": "Metrics.MetricName", "Operator": "Equals", "Value": "loss"},
            {"Name": "Metrics.Max", "Operator": "LessThan", "Value": "500"}]}],
        "SubExpressions": [
            {"Operator": "Or", "Filters": [{"Name": "Parameters.opt", "Operator": "Equals", "Value": "adam"},
                                            {"Name": "Tags.team", "Operator": "Equals", "Value": "a"}]},
            {"Filters": [{"Name": "Parameters.lr", "Operator": "GreaterThanOrEqualTo", "Value": "0.1"},
                         {"Name": "DisplayName", "Operator": "NotEquals", "Value": "group-5"}]}],
        "Operator": "And"}
    expected = [n for i, n in enumerate(names)
                if _has_loss(i) and _loss_max(i) < 500 and (i % 3 == 0 or i % 4 == 1)
                and i / COUNT >= 0.1 and i % 10 != 5]
    got = _everything(sagemaker_client, expression, SortBy="Parameters.lr", SortOrder="Ascending")
    assert got == expected and len(expected) > 100

    # Or at the top: either trial-0 members with a small lr, or the components without a loss metric
    either = {"Operator": "Or", "SubExpressions": [
        {"Filters": [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": trials[0]},
                     {"Name": "Parameters.lr", "Operator": "LessThan", "Value": "0.05"}]},
        {"Filters": [_in(experiment), {"Name": "Metrics.loss.Max", "Operator": "NotExists"}]}]}
    expected = [n for i, n in enumerate(names) if (i % 2 == 0 and i / COUNT < 0.05) or not _has_loss(i)]
    assert _everything(sagemaker_client, either, page=37, SortBy="CreationTime", SortOrder="Ascending") == expected

    # a nested filter holds within one element: Parents with trial 1 of *this* experiment
    nested = {"NestedFilters": [{"NestedPropertyName": "Parents", "Filters": [
        {"Name": "Parents.TrialName", "Operator": "Equals", "Value": trials[1]},
        {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": experiment}]}],
        "Filters": [{"Name": "Parameters.opt", "Operator": "In", "Value": "sgd,rmsprop"}]}
    expected = [n for i, n in enumerate(names) if i % 2 == 1 and i % 3 != 0]
    assert _everything(sagemaker_client, nested, SortBy="CreationTime", SortOrder="Ascending") == expected
    crossed = {"NestedFilters": [{"NestedPropertyName": "Parents", "Filters": [
        {"Name": "Parents.TrialName", "Operator": "Equals", "Value": trials[1]},
        {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": "another-experiment"}]}]}
    assert _everything(sagemaker_client, crossed) == []


def test_sorting_on_metrics_parameters_and_creation_time(sagemaker_client, population):
    experiment, _, names = population
    mine = {"Filters": [_in(experiment)]}
    by_loss = sorted((i for i in range(COUNT) if _has_loss(i)), key=_loss_max, reverse=True)
    without = [i for i in range(COUNT) if not _has_loss(i)]
    # Descending is the default order; components without the metric come last, in either order
    got = _everything(sagemaker_client, mine, page=100, SortBy="Metrics.loss.Max")
    assert got == [names[i] for i in by_loss] + [names[i] for i in without]
    got = _everything(sagemaker_client, mine, page=100, SortBy="Metrics.loss.Max", SortOrder="Ascending")
    assert got == [names[i] for i in reversed(by_loss)] + [names[i] for i in without]
    assert _everything(sagemaker_client, mine, page=100, SortBy="Parameters.lr", SortOrder="Descending") == \
        list(reversed(names))
    assert _everything(sagemaker_client, mine, page=100, SortBy="CreationTime", SortOrder="Ascending") == names
    assert _everything(sagemaker_client, mine, page=100, SortBy="CreationTime") == list(reversed(names))
    # a string property sorts as text
    got = _everything(sagemaker_client, mine, page=100, SortBy="Parameters.opt", SortOrder="Ascending")
    assert got == [n for _, n in sorted(((OPTIMIZERS[i % 3], i), n) for i, n in enumerate(names))]


def test_pages_and_their_tokens(sagemaker_client, population):
    experiment, _, names = population
    mine = {"Filters": [_in(experiment)]}
    first = sagemaker_client.search(Resource="ExperimentTrialComponent", SearchExpression=mine,
                                    SortBy="CreationTime", SortOrder="Ascending")
    assert len(first["Results"]) == 10 and first["TotalHits"] == {"Value": COUNT, "Relation": "EqualTo"}
    # the page size may change between pages; the token belongs to one search
    second = sagemaker_client.search(Resource="ExperimentTrialComponent", SearchExpression=mine,
                                     SortBy="CreationTime", SortOrder="Ascending", MaxResults=100,
                                     NextToken=first["NextToken"])
    assert [r["TrialComponent"]["TrialComponentName"] for r in second["Results"]] == names[10:110]
    with pytest.raises(ClientError) as exc:
        sagemaker_client.search(Resource="ExperimentTrialComponent", SearchExpression=mine, SortBy="Parameters.lr",
                                NextToken=first["NextToken"])
    assert error_of(exc)[0] == "ValidationException"
    hit = first["Results"][0]["TrialComponent"]
    assert hit["Parents"] and hit["Parameters"]["opt"] == {"StringValue": "adam"}


@pytest.mark.parametrize("expression, message", [
    ({}, "at least one"),
    ({"Filters": [{"Name": "Parameters.opt", "Operator": "GreaterThan", "Value": "adam"}]}, "numeric"),
    ({"Filters": [{"Name": "TrialComponentName", "Operator": "Contains", "Value": "a"},
                  {"Name": "Source.SourceArn", "Operator": "Contains", "Value": "b"},
                  {"Name": "Source.SourceType", "Operator": "Contains", "Value": "c"}]},
     "'CONTAINS' operator usage limit of 1 exceeded."),
    ({"SubExpressions": [{"Filters": [{"Name": f"Parameters.p{i}", "Operator": "Exists"} for i in range(20)]}
                         for _ in range(3)]}, "50"),
    ({"Filters": [{"Name": "Parameters.lr", "Operator": "Equals"}]}, "Value"),
])
def test_invalid_expressions(sagemaker_client, expression, message):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.search(Resource="ExperimentTrialComponent", SearchExpression=expression)
    code, text, status = error_of(exc)
    assert (code, status) == ("ValidationException", 400) and message in text


def test_contains_repeats_on_the_names_aws_allows(sagemaker_client, population):
    experiment, _, names = population
    expression = {"Filters": [_in(experiment),
                              {"Name": "TrialComponentName", "Operator": "Contains", "Value": "-tc-00"},
                              {"Name": "DisplayName", "Operator": "Contains", "Value": "group-3"}]}
    expected = [n for i, n in enumerate(names) if i < 100 and i % 10 == 3]
    assert _everything(sagemaker_client, expression, SortBy="CreationTime", SortOrder="Ascending") == expected


def test_search_suggestions(sagemaker_client, population):
    """GetSearchSuggestions completes a property name from the parameters, metrics and tags the
    components have; each suggestion is a path Search can filter on."""
    sm = sagemaker_client

    def suggested(hint: str) -> list[str]:
        answer = sm.get_search_suggestions(Resource="ExperimentTrialComponent",
                                           SuggestionQuery={"PropertyNameQuery": {"PropertyNameHint": hint}})
        names = [s["PropertyName"] for s in answer["PropertyNameSuggestions"]]
        assert all(n.lower().startswith(hint.lower()) for n in names) and names == sorted(set(names))
        return names

    assert {"Parameters.lr", "Parameters.opt"} <= set(suggested("param"))
    assert "Metrics.loss" in suggested("Metrics.l") and "Tags.team" in suggested("tags.")
    assert suggested("Parameters.zz-none") == []
    experiment = population[0]
    hits = sm.search(Resource="ExperimentTrialComponent", MaxResults=5, SearchExpression={"Filters": [
        {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": experiment},
        {"Name": "Parameters.opt", "Operator": "Equals", "Value": "sgd"}]})
    assert hits["TotalHits"]["Value"] == len([i for i in range(COUNT) if i % 3 == 1])
    with pytest.raises(ClientError) as excinfo:
        sm.get_search_suggestions(Resource="Image")
    assert error_of(excinfo)[0] == "ValidationException"
