"""The app's background jobs (photos.jobs): sent by the services, run by the worker, and a job lost
before a crash queued again at start-up."""

from __future__ import annotations

import orjson

from photos import jobs
from summit.ports import QueueStats

API = "/api/v1"


async def test_every_job_has_a_handler_and_the_worker_runs_them(app, client, make_user, make_post, drain):  # noqa: ANN001
    ctx = app.state.ctx
    assert set(jobs.HANDLERS) == {jobs.THUMBNAILS, jobs.OBJECT_CLEANUP, jobs.SEARCH_INDEX}
    user = await make_user()
    post = await make_post(user)
    await drain()
    assert (await client.get(f"{API}/posts/{post['id']}")).json()["thumbnails"]["ready"] is True
    await ctx.objects.put("t/leftover.webp", b"x", content_type="image/webp")
    await jobs.request_object_cleanup(ctx, ["t/leftover.webp"])
    await drain()
    assert await ctx.objects.list("t/leftover") == []


async def test_a_thumbnail_job_lost_before_a_crash_is_queued_again(app, client, make_user, make_post, drain):  # noqa: ANN001
    ctx = app.state.ctx
    await app.state.worker.stop(timeout=10)  # as if the process died before the worker ran the job
    user = await make_user()
    post = await make_post(user)
    assert await ctx.queue.stats(jobs.THUMBNAILS) == QueueStats(visible=1, in_flight=0, delayed=0)
    await ctx.queue.purge(jobs.THUMBNAILS)  # the message is gone with the crash
    await jobs.requeue_lost(ctx)  # what start-up does
    [message] = await ctx.queue.receive(jobs.THUMBNAILS, visibility_timeout=60)
    assert orjson.loads(message.body) == {"post_id": post["id"]}
    await ctx.queue.release(jobs.THUMBNAILS, message.receipt)
    app.state.worker = jobs.build_worker(ctx)
    await app.state.worker.start()
    await drain()
    assert (await client.get(f"{API}/posts/{post['id']}")).json()["thumbnails"]["ready"] is True


async def test_photos_go_out_by_file_with_ranges(client, make_user, make_post):  # noqa: ANN001
    user = await make_user()
    post = await make_post(user)
    whole = await client.get(post["photo_url"])
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert int(whole.headers["content-length"]) == len(whole.content)
    part = await client.get(post["photo_url"], headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole.content[:10]
    assert part.headers["etag"] == whole.headers["etag"]
