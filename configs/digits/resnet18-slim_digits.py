# Demo: a slim ResNet-18 (16 base channels, CIFAR-style 3x3 stem without
# max-pooling, ~0.7 M parameters) trained on scikit-learn's bundled 8x8
# digits, upscaled to 32x32 PNGs. Needs no download and trains on two CPU
# cores in about a minute:
#
#   python tools/make_digits.py --out data/digits  # optional: train does it
#   python tools/train_digits.py   # -> configs/digits/resnet18-slim_digits.pth
#   python tools/vis_tsne.py configs/digits/resnet18-slim_digits.py \
#       --checkpoint configs/digits/resnet18-slim_digits.pth
#
# Paths (data_root, work_dir) are relative to the folder you run from: the
# repository root.
_base_ = ['mmpretrain::_base_/default_runtime.py']

# ---------------------------------------------------------------- model
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet_CIFAR',  # ResNet with a 3x3 stride-1 stem, no max-pool
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=128,  # base_channels * 2 ** (num_stages - 1)
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))

# ---------------------------------------------------------------- data
dataset_type = 'CustomDataset'
data_root = 'data/digits'
data_preprocessor = dict(
    num_classes=10,
    # pixel statistics of the demo images (grey, so all three are equal)
    mean=[78.0, 78.0, 78.0],
    std=[82.5, 82.5, 82.5],
    # images are loaded as BGR by LoadImageFromFile
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=32),  # a no-op for the default --size 32
    dict(type='RandomCrop', crop_size=32, padding=2),  # no flips: digits
    dict(type='PackInputs'),
]

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=32),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='val',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))

# t-SNE (tools/vis_tsne.py) draws the val images
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
max_epochs = 8
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, by_epoch=True,
         begin=1, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs,
                 val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)

# ---------------------------------------------------------------- runtime
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    # only the weights (plus meta and message_hub): keeps the file small
    checkpoint=dict(
        type='CheckpointHook',
        interval=max_epochs,
        max_keep_ckpts=1,
        save_optimizer=False,
        save_last=True),
)
work_dir = 'work_dirs/resnet18-slim_digits'
randomness = dict(seed=0, deterministic=False)

# t-SNE settings for tools/vis_tsne.py; flags given on the command line win.
# Keys left out take the backend defaults (openTSNE: init='pca',
# learning_rate='auto', n_iter=750). For the exact computation of
# mmpretrain's vis_tsne.py use backend='sklearn', init='random',
# learning_rate=200.0, n_iter=1000.
tsne = dict(
    backend='opentsne',
    n_components=2,
    perplexity=30.0,
    early_exaggeration=12.0)
