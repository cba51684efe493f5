// The interactive API reference, from Swagger UI served by Sift itself (the CSP allows no CDN).
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: root.dataset.spec, domNode: root, deepLinking: true });
});
