// Interactive API docs, served from this origin (no CDN), so the page works offline and under CSP.
window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
