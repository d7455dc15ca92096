"""Schema-driven fuzzing of the API with Schemathesis: every operation of ``/api/v1/openapi.json``, called
over HTTP on a live portal with a real key, never answers 5xx and always answers what the document says.

Examples are generated from the document itself (valid and invalid bodies, query strings and path ids);
a few objects exist (a plan, an account with a user and a subscription), so the ids the document's
examples and Hypothesis try sometimes find something. Kept to a few examples per operation to stay quick.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from portal.audit import Actor
from portal.billing.invoicing.seller import Seller
from portal.billing.subscriptions.starting import start_subscription
from portal.models import utcnow

from ..helpers import POLICY, bearer, make_api_key, make_customer, make_plan


@pytest.fixture
def api(live_server, database, session):
    """The live portal with a key and a little data; its OpenAPI document read over HTTP."""
    key = make_api_key(session, name="schemathesis")
    account, _ = make_customer(session, external_id="acme")
    make_plan(session, code="pro-monthly")
    start_subscription(session, database, live_server.app.extensions["portal.gateway"],
                       Seller.from_settings(live_server.app.extensions["portal.settings"]), account.id,
                       plan_code="pro-monthly", trial_days=14, actor=Actor.system(), now=utcnow(), policy=POLICY)
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    schema.config.update(base_url=live_server.url)
    schema.config.update(headers=bearer(key))
    return schema


schema = schemathesis.pytest.from_fixture("api")

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_without_5xx_and_as_its_schema_says(case):
    case.call_and_validate(checks=CHECKS)
