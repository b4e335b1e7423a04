// Summit Photos: progressive enhancement only; every page works without this file.
// - swaps in thumbnails of posts still being processed (polls the JSON API),
// - likes and unlikes without a page reload (falls back to the plain form on any error),
// - asks before destructive form submissions, checks upload sizes and previews the chosen photo.
(function () {
  "use strict";

  var POLL_MS = 1000;
  var POLL_TRIES = 60;

  function pollThumbnails() {
    var waiting = {};
    document.querySelectorAll("img[data-pending-post]").forEach(function (img) {
      var id = img.getAttribute("data-pending-post");
      if (/^\d{1,20}$/.test(id)) (waiting[id] = waiting[id] || []).push(img);
    });
    var tries = 0;

    function swap(imgs, thumbs) {
      imgs.forEach(function (img) {
        var url = thumbs[img.getAttribute("data-size") || "medium"];
        if (url) {
          img.src = url;
          img.alt = img.alt.replace(" (processing)", "");
        }
        img.removeAttribute("data-pending-post");
        img.classList.remove("pending");
      });
    }

    function round() {
      var ids = Object.keys(waiting);
      if (!ids.length || tries++ >= POLL_TRIES) return;
      Promise.all(ids.map(function (id) {
        return fetch("/api/v1/posts/" + id, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) {
            if (r.status === 404) { delete waiting[id]; return null; }
            return r.ok ? r.json() : null;
          })
          .then(function (post) {
            if (post && post.thumbnails && post.thumbnails.ready) {
              swap(waiting[id] || [], post.thumbnails);
              delete waiting[id];
            }
          })
          .catch(function () { /* try again next round */ });
      })).then(function () {
        if (Object.keys(waiting).length) setTimeout(round, POLL_MS);
      });
    }
    setTimeout(round, POLL_MS);
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function enhanceLikes() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form.matches || !form.matches("form[data-like]") || !window.fetch) return;
      event.preventDefault();
      var id = form.getAttribute("data-like");
      var doField = form.querySelector("input[name=do]");
      var like = doField.value !== "unlike";
      var button = form.querySelector("button");
      button.disabled = true;
      fetch("/api/v1/posts/" + id + "/like", {
        method: like ? "PUT" : "DELETE",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": form.querySelector("input[name=csrf_token]").value }
      }).then(function (r) {
        if (!r.ok) throw new Error("like failed: " + r.status);
        return r.json();
      }).then(function (data) {
        doField.value = data.liked ? "unlike" : "like";
        button.classList.toggle("liked", data.liked);
        button.setAttribute("aria-pressed", data.liked ? "true" : "false");
        button.querySelector(".heart").textContent = data.liked ? "\u2665" : "\u2661";
        button.querySelector(".like-label").textContent = data.liked ? "Unlike" : "Like";
        document.querySelectorAll('[data-like-count="' + id + '"]').forEach(function (el) {
          el.textContent = plural(data.like_count, "like");
        });
        button.disabled = false;
      }).catch(function () {
        button.disabled = false;
        form.submit(); // the plain form does the same and shows any error page
      });
    });
  }

  function enhanceForms() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var question = form.getAttribute && form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    });
    document.querySelectorAll("form[data-upload]").forEach(function (form) {
      var input = form.querySelector("input[type=file]");
      var preview = form.querySelector("img.preview");
      // the server's limit in bytes and its own refusal (photos/uploads.py): one unit, one message
      var max = parseInt(input.getAttribute("data-max-bytes"), 10);
      var tooLarge = input.getAttribute("data-too-large") || "";
      tooLarge = tooLarge.charAt(0).toUpperCase() + tooLarge.slice(1);
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        input.setCustomValidity(file && max && file.size > max ? tooLarge : "");
        input.reportValidity();
        if (preview) {
          if (preview.src.indexOf("blob:") === 0) URL.revokeObjectURL(preview.src);
          if (file && /^image\//.test(file.type)) {
            preview.src = URL.createObjectURL(file);
            preview.hidden = false;
          } else {
            preview.hidden = true;
          }
        }
      });
      form.addEventListener("submit", function () {
        var button = form.querySelector("button[type=submit]");
        if (!button) return;
        button.setAttribute("data-label", button.textContent);
        setTimeout(function () { button.disabled = true; button.textContent = "Uploading…"; }, 0);
      });
      window.addEventListener("pageshow", function () { // back from the next page: usable again
        var button = form.querySelector("button[type=submit]");
        if (button && button.disabled) { button.disabled = false; button.textContent = button.getAttribute("data-label"); }
      });
    });
  }

  function start() {
    pollThumbnails();
    enhanceLikes();
    enhanceForms();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
