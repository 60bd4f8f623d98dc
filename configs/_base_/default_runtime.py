# Runtime shared by every mmdet-spine config (mmdet's default runtime + our imports).
default_scope = 'mmdet'
custom_imports = dict(imports=['mmdet_spine'], allow_failed_imports=False)
# mmengine's Runner with checkpoints that are atomic, sha256-recorded and NaN-free, and an
# auto-resume that picks the newest complete checkpoint that verifies (mmdet's tools/train.py
# and ours build RUNNERS.build(cfg) when runner_type is set).
runner_type = 'SpineRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook whose files are complete or absent (temp file + fsync + rename, then a
    # <name>.sha256 record), with crash-safe last_checkpoint and max_keep_ckpts clean-up.
    checkpoint=dict(type='AtomicCheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))

# Denormal floats make CPU training up to 10x slower (measured); flush them to zero.
# NaN/Inf loss: stop at that iteration (action='skip' drops the update instead). Per-epoch
# seeding makes a resumed run repeat the uninterrupted one. On the CPU the model runs
# channels-last (oneDNN's layout; faster training and inference, docs/benchmarks.md).
custom_hooks = [dict(type='FlushDenormalHook'), dict(type='NonFiniteLossHook'),
                dict(type='EpochSeedHook'), dict(type='ChannelsLastHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo on machines without CUDA.
    dist_cfg=dict(backend='nccl', timeout=1800))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
