// Starts Swagger UI on the OpenAPI document inlined in the /docs page (rendered by voyagent/docs_page.py).
(function () {
  "use strict";
  var spec = JSON.parse(document.getElementById("openapi-document").textContent);

  // Swagger UI's own filter matches tag names only; ours also matches method, path, summary and operationId.
  function opsFilter(taggedOps, phrase) {
    var needle = String(phrase).trim().toLowerCase();
    return taggedOps
      .map(function (tag, tagName) {
        return tag.set("operations", tag.get("operations").filter(function (op) {
          var text = [tagName, op.get("method"), op.get("path"),
            op.getIn(["operation", "summary"]) || "", op.getIn(["operation", "operationId"]) || ""];
          return text.join(" ").toLowerCase().indexOf(needle) !== -1;
        }));
      })
      .filter(function (tag) { return tag.get("operations").size > 0; });
  }

  window.ui = SwaggerUIBundle({
    spec: spec,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    plugins: [{ fn: { opsFilter: opsFilter } }],
    filter: true,
    deepLinking: true,
    docExpansion: "list",
    displayOperationId: true,
    displayRequestDuration: true,
    showExtensions: true,
    showCommonExtensions: true,
    requestSnippetsEnabled: true,
    persistAuthorization: false,
    queryConfigEnabled: false,
    validatorUrl: null
  });
})();
