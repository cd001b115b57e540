"""The GraphiQL playground page, served with no internet access.

The page loads GraphiQL and React from ``/static/graphiql/`` (copied there from the npm lock
in ``graphiql/`` by ``scripts/bootstrap``), sends operations to ``/graphql`` over HTTP and
subscriptions over WebSocket, and opens one tab per example operation of the candidate
journey. The operations live in ``cetgql/graphql/operations/*.graphql``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

STATIC_PREFIX = "/static/graphiql"
GRAPHQL_PATH = "/graphql"

# The files ``scripts/bootstrap`` copies into ``cetgql/static/graphiql/``.
ASSETS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
)

DEMO_SESSION_CODE = "2026H1"
DEMO_NAME = "张三"
DEMO_ID_TYPE = "RESIDENT_ID"
DEMO_ID_NUMBER = "11010519491231002X"
DEMO_PHONE = "13800138000"
DEMO_EMAIL = "zhangsan@example.cn"
DEMO_PASSWORD = "Cet@2026demo"  # noqa: S105 - the published demo password

WELCOME = """\
# cetgql: the CET registration API
# (全国大学英语四、六级考试报名)
#
# One tab per step of a candidate's journey, left to
# right: ExamSessions, SignUp, SignIn, Viewer,
# VerifyQualification, ConfirmQualification,
# RequestVerificationCode, ResetPassword, SignOut.
# Run a tab with Ctrl-Enter or the ▶ button; edit the
# demo values in the Variables pane below. Ctrl-Space
# completes; the Docs button (top left) shows the schema.
#
# Signing in: SignIn returns a token. This page keeps it
# (in this browser) and sends the header
#   Authorization: Bearer <token>
# on every later request until SignOut. To send another
# token, write it in the Headers pane:
#   {"Authorization": "Bearer <paste the token from signIn>"}
# Without a token you act anonymously.
#
"""

NEW_TAB_QUERY = """\
# Write a query or mutation here. Ctrl-Space completes;
# the Docs button shows the schema. Signed-in requests
# carry  Authorization: Bearer <token>  (see first tab).
"""


@dataclass(frozen=True)
class ExampleOperation:
    """One preloaded tab: the operation text from ``operations/<filename>`` and its variables."""

    filename: str
    variables: dict[str, Any]

    @property
    def query(self) -> str:
        return _read_operation(self.filename)


# The tab order. The first tab runs without signing in.
EXAMPLE_OPERATIONS: tuple[ExampleOperation, ...] = (
    ExampleOperation("exam_sessions.graphql", {"first": 10}),
    ExampleOperation(
        "sign_up.graphql",
        {
            "input": {
                "name": DEMO_NAME,
                "idType": DEMO_ID_TYPE,
                "idNumber": DEMO_ID_NUMBER,
                "phone": DEMO_PHONE,
                "email": DEMO_EMAIL,
                "password": DEMO_PASSWORD,
            }
        },
    ),
    ExampleOperation(
        "sign_in.graphql", {"input": {"login": DEMO_ID_NUMBER, "password": DEMO_PASSWORD}}
    ),
    ExampleOperation("viewer.graphql", {}),
    ExampleOperation(
        "verify_qualification.graphql",
        {
            "input": {
                "sessionCode": DEMO_SESSION_CODE,
                "name": DEMO_NAME,
                "idType": DEMO_ID_TYPE,
                "idNumber": DEMO_ID_NUMBER,
            }
        },
    ),
    ExampleOperation(
        "confirm_qualification.graphql", {"input": {"sessionCode": DEMO_SESSION_CODE}}
    ),
    ExampleOperation("available_subjects.graphql", {"sessionCode": DEMO_SESSION_CODE}),
    ExampleOperation(
        "oral_centers.graphql", {"sessionCode": DEMO_SESSION_CODE, "subjectCode": "CET-SET4"}
    ),
    ExampleOperation(
        "select_subjects.graphql",
        {"input": {"sessionCode": DEMO_SESSION_CODE, "items": [{"subjectCode": "CET4"}]}},
    ),
    ExampleOperation("payment_providers.graphql", {}),
    ExampleOperation(
        "start_payment.graphql",
        {"input": {"orderId": "<an order id from SelectSubjects>", "provider": "alipay"}},
    ),
    ExampleOperation(
        "refresh_payment.graphql", {"input": {"paymentId": "<the payment id from StartPayment>"}}
    ),
    ExampleOperation("my_registrations.graphql", {"sessionCode": DEMO_SESSION_CODE}),
    ExampleOperation(
        "request_verification_code.graphql",
        {"input": {"purpose": "RESET_PASSWORD", "channel": "EMAIL", "login": DEMO_EMAIL}},
    ),
    ExampleOperation(
        "reset_password.graphql",
        {
            "input": {
                "login": DEMO_EMAIL,
                "channel": "EMAIL",
                "code": "<the code you received>",
                "newPassword": "Cet@2026new",
            }
        },
    ),
    ExampleOperation("sign_out.graphql", {}),
)


def _read_operation(filename: str) -> str:
    return (resources.files("cetgql.graphql") / "operations" / filename).read_text("utf-8")


def _json_for_script(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``</script>``, ``<!--`` or U+2028."""
    text = json.dumps(value, ensure_ascii=False, indent=None, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def graphiql_config() -> dict[str, Any]:
    """What the page script reads: endpoint path, the new-tab text and the example tabs."""
    tabs = []
    for index, operation in enumerate(EXAMPLE_OPERATIONS):
        query = operation.query
        if index == 0:
            query = WELCOME + query
        variables = json.dumps(operation.variables, ensure_ascii=False, indent=2)
        tabs.append({"query": query, "variables": variables if operation.variables else None})
    return {"graphqlPath": GRAPHQL_PATH, "defaultQuery": NEW_TAB_QUERY, "tabs": tabs}


_PAGE = r"""<!doctype html>
<html lang="zh-CN">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>cetgql GraphiQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="{static}/graphiql.min.css">
    <style>
      html, body {{ height: 100%; margin: 0; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script id="cetgql-graphiql-config" type="application/json">{config}</script>
    <script src="{static}/react.production.min.js"></script>
    <script src="{static}/react-dom.production.min.js"></script>
    <script src="{static}/graphiql.min.js"></script>
    <script>
      (function () {{
        "use strict";
        var config = JSON.parse(
          document.getElementById("cetgql-graphiql-config").textContent
        );
        var TOKEN_KEY = "cetgql:token";
        var url = new URL(config.graphqlPath, window.location.href);
        var subscriptionUrl = new URL(url.href);
        subscriptionUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";

        function storedToken() {{
          try {{ return window.localStorage.getItem(TOKEN_KEY); }} catch (e) {{ return null; }}
        }}
        function storeToken(token) {{
          try {{
            if (token) {{ window.localStorage.setItem(TOKEN_KEY, token); }}
            else {{ window.localStorage.removeItem(TOKEN_KEY); }}
          }} catch (e) {{ /* storage disabled: the Headers pane still works */ }}
        }}
        function hasAuthorization(headers) {{
          return Object.keys(headers).some(function (name) {{
            return name.toLowerCase() === "authorization";
          }});
        }}
        // Remember the token of a successful signIn; forget it after signOut.
        function watch(result) {{
          var data = result && result.data;
          if (!data) {{ return; }}
          if (data.signIn && typeof data.signIn.token === "string" && data.signIn.token) {{
            storeToken(data.signIn.token);
          }}
          if (data.signOut) {{
            storeToken(null);
          }}
        }}

        var baseFetcher = GraphiQL.createFetcher({{
          url: url.href,
          subscriptionUrl: subscriptionUrl.href,
          enableIncrementalDelivery: false
        }});
        // Right after a tab switch GraphiQL may still send the previous tab's operation
        // name; drop a name the document does not define so the operation still runs.
        function definesOperation(query, name) {{
          return new RegExp("\\b(query|mutation|subscription)\\s+" + name + "\\b").test(query);
        }}
        function fetcher(params, options) {{
          var name = params.operationName;
          if (name && !definesOperation(params.query || "", name)) {{
            params = Object.assign({{}}, params, {{ operationName: undefined }});
          }}
          var headers = Object.assign({{}}, options && options.headers);
          var token = storedToken();
          if (token && !hasAuthorization(headers)) {{
            headers.Authorization = "Bearer " + token;
          }}
          var result = baseFetcher(params, Object.assign({{}}, options, {{ headers: headers }}));
          if (result && typeof result.then === "function") {{
            return result.then(function (value) {{ watch(value); return value; }});
          }}
          return result;
        }}

        // GraphiQL fills the Variables pane from this prop, not from the first tab: pass
        // the first tab's variables on a first visit, and nothing when tabs were restored.
        var firstVisit = true;
        try {{
          firstVisit = !window.localStorage.getItem("graphiql:tabState");
        }} catch (e) {{ /* no storage: every visit is a first visit */ }}

        var root = ReactDOM.createRoot(document.getElementById("graphiql"));
        root.render(
          React.createElement(GraphiQL, {{
            fetcher: fetcher,
            defaultTabs: config.tabs,
            variables: firstVisit ? config.tabs[0].variables || undefined : undefined,
            defaultQuery: config.defaultQuery,
            defaultEditorToolsVisibility: true,
            isHeadersEditorEnabled: true,
            shouldPersistHeaders: true,
            inputValueDeprecation: true
          }})
        );
      }})();
    </script>
  </body>
</html>
"""


@cache
def render_graphiql_page() -> str:
    """The HTML of the GraphiQL playground (the same for every request)."""
    return _PAGE.format(static=STATIC_PREFIX, config=_json_for_script(graphiql_config()))


def _inline_hashes(page: str, tag: str) -> list[str]:
    """CSP hashes of the page's inline ``<tag>`` elements (not those with ``src`` or a data
    ``type``, which the browser never runs)."""
    found = []
    for match in re.finditer(rf"<{tag}(?P<attrs>[^>]*)>(?P<body>.*?)</{tag}>", page, re.S):
        if "src=" in match["attrs"] or "application/json" in match["attrs"]:
            continue
        digest = hashlib.sha256(match["body"].encode("utf-8")).digest()
        found.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return found


@cache
def content_security_policy() -> str:
    """The page's Content-Security-Policy: everything from this origin only (scripts and
    styles from /static/graphiql, the page's own inline script and style by hash, requests
    and the subscription WebSocket to this origin), and never inside a frame."""
    page = render_graphiql_page()
    scripts = " ".join(["'self'", *_inline_hashes(page, "script")])
    styles = " ".join(["'self'", *_inline_hashes(page, "style")])
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {scripts}",
            f"style-src {styles}",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
