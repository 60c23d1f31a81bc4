//! GraphiQL, served entirely by the API: the page below and the pinned npm assets that
//! build.rs embeds. Works with no internet.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::HttpState;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/graphiql_assets.rs"));
}

const EXAMPLE_QUERY: &str = "# Welcome to the Billing API.
# Put your API key in the Headers pane below, as
#   {\"Authorization\": \"Bearer bk_...\"}
# then press the run button (or Ctrl-Enter).

query RecentOrders {
  orders(perPage: 5, sort: CREATED_AT, direction: DESC) {
    nodes {
      number
      status
      paymentStatus
      totalCents
      currency
      items { name quantity unitPriceCents }
      payments { status provider amountCents }
      refunds { amountCents status }
      user { email balanceCents }
    }
    pageInfo { totalCount hasNextPage }
  }
}
";

/// A JSON string literal that is also safe inside a `<script>` element.
fn js_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string().replace("</", "<\\/")
}

fn page(key: Option<&str>) -> String {
    let headers = format!("{{\n  \"Authorization\": \"Bearer {}\"\n}}", key.unwrap_or("<your API key>"));
    if let Some(reason) = assets::GRAPHIQL_ASSETS_ERROR {
        return format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Billing API — GraphiQL</title></head><body>\
             <h1>GraphiQL assets are missing</h1><p>The binary was built without them ({}). Install Node.js and npm, \
             then rebuild (<code>cargo build</code>); build.rs installs the pinned packages of <code>graphiql/</code>.</p>\
             <p>The API itself works: POST /graphql with <code>Authorization: Bearer &lt;key&gt;</code>.</p></body></html>",
            reason.replace('<', "&lt;")
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Billing API — GraphiQL</title>
  <link rel="stylesheet" href="/graphiql/assets/graphiql.min.css">
  <style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphiql/assets/react.production.min.js"></script>
  <script src="/graphiql/assets/react-dom.production.min.js"></script>
  <script src="/graphiql/assets/graphiql.min.js"></script>
  <script src="/graphiql/assets/graphql-ws.min.js"></script>
  <script>
    // Queries and mutations over HTTP; subscriptions over a WebSocket (graphql-ws), with the
    // key of the Headers pane sent in connection_init (a browser cannot set WebSocket headers).
    const http = GraphiQL.createFetcher({{ url: '/graphql' }});
    const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
    const isSubscription = (params, opts) => {{
      const doc = opts && opts.documentAST;
      const ops = doc ? doc.definitions.filter((d) => d.kind === 'OperationDefinition') : [];
      const op = ops.find((d) => !params.operationName || (d.name && d.name.value === params.operationName)) || ops[0];
      return !!op && op.operation === 'subscription';
    }};
    const fetcher = (params, opts) => {{
      if (!isSubscription(params, opts)) return http(params, opts);
      const headers = (opts && opts.headers) || {{}};
      const client = graphqlWs.createClient({{
        url: wsUrl,
        connectionParams: {{ Authorization: headers.Authorization || headers.authorization || '' }},
        retryAttempts: 0,
      }});
      return {{
        subscribe(sink) {{
          const dispose = client.subscribe(params, {{
            next: (value) => sink.next(value),
            error: (error) => sink.error(error),
            complete: () => sink.complete(),
          }});
          return {{ unsubscribe() {{ dispose(); client.dispose(); }} }};
        }},
      }};
    }};
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, {{
        fetcher,
        defaultQuery: {query},
        defaultHeaders: {headers},
        defaultEditorToolsVisibility: 'headers',
        shouldPersistHeaders: true,
      }}),
    );
  </script>
</body>
</html>
"#,
        query = js_string(EXAMPLE_QUERY),
        headers = js_string(&headers),
    )
}

/// Whether the request named this machine's loopback in its Host header. A page from
/// another site that resolves its own name to 127.0.0.1 (DNS rebinding) sends its own name.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The GraphiQL page. In development (a private cluster, bound to loopback) it pre-fills
/// the dev admin key, and only for a request addressed to loopback.
pub async fn graphiql(State(state): State<HttpState>, headers: HeaderMap) -> Html<String> {
    let key = state.app.config().graphiql_key.as_deref().filter(|_| loopback_host(&headers));
    Html(page(key))
}

/// The embedded scripts and styles.
pub async fn asset(Path(name): Path<String>) -> Response {
    let Some((_, bytes)) = assets::GRAPHIQL_ASSETS.iter().find(|(asset, _)| *asset == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let content_type =
        if name.ends_with(".css") { "text/css; charset=utf-8" } else { "text/javascript; charset=utf-8" };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    response
}
