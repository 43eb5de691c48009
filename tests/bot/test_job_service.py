"""One switch, MEMESWAP_REDIS_URL, picks the engine and the blob store; the URL is a secret."""

import asyncio

from memeswap.bot.assembly import build_blob_store, build_engine
from memeswap.bot.settings import Settings
from memeswap.inference.jobs.blobs import LocalBlobStore
from memeswap.inference.jobs.in_process import InProcessEngine
from memeswap.inference.jobs.redis_blobs import RedisBlobStore
from memeswap.inference.jobs.redis_engine import RedisStreamsEngine
from memeswap.inference.media.limits import MediaLimits
from memeswap.inference.meme_maker import MemeMaker


def test_without_redis_jobs_run_in_process_with_blobs_in_the_data_folder(tmp_path, analyser, swapper, library):
    settings = Settings(_env_file=None, data_dir=tmp_path, job_workers=3, per_user_jobs=4)
    blobs = build_blob_store(settings)
    assert isinstance(blobs, LocalBlobStore) and blobs.folder == tmp_path / "blobs"
    engine = build_engine(settings, blobs, maker=MemeMaker(analyser, swapper, library, MediaLimits()))
    assert isinstance(engine, InProcessEngine)
    assert (engine.workers, engine.per_user_concurrency) == (3, 4)


def test_with_redis_a_shard_loads_no_model_and_blobs_go_to_redis(tmp_path, redis_url, redis_prefix):
    settings = Settings(_env_file=None, data_dir=tmp_path, redis_url=redis_url, redis_prefix=redis_prefix,
                        shard_name="shard-7", job_queue_max=5)
    blobs = build_blob_store(settings)
    assert isinstance(blobs, RedisBlobStore)
    engine = build_engine(settings, blobs)  # no components: building models here would fail the test's budget
    assert isinstance(engine, RedisStreamsEngine)
    assert (engine.shard, engine.max_queue, engine.keys.prefix) == ("shard-7", 5, redis_prefix)

    async def health():
        async with engine:
            return await engine.health()

    assert asyncio.run(health())["ok"] is True


def test_the_redis_url_is_kept_out_of_reprs_and_dumps():
    settings = Settings(_env_file=None, redis_url="redis://:s3cret-pass@cache.internal:6379/0")
    assert "s3cret-pass" not in repr(settings) and "s3cret-pass" not in str(settings.model_dump())
    assert settings.redis_url.get_secret_value().endswith("@cache.internal:6379/0")
