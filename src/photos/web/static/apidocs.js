// Interactive API docs: Swagger UI 5 (it reads OpenAPI 3.1), served from this origin (no CDN), so
// the page works offline and under CSP. validatorUrl: null, or it would fetch a badge from elsewhere.
window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });
