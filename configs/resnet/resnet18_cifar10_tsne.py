# t-SNE of a ResNet-18 trained on CIFAR-10: mmpretrain's own config, plus the
# t-SNE hyper-parameters. The points are the CIFAR-10 test images of
# test_dataloader (downloaded to data/cifar10 by mmpretrain's CIFAR10 dataset
# on first use).
#
#   python tools/vis_tsne.py configs/resnet/resnet18_cifar10_tsne.py \
#       --checkpoint resnet18_b16x8_cifar10_20210528-bd6371c8.pth
#
# with the checkpoint of mmpretrain's model zoo for this config, from
# https://download.openmmlab.com/mmclassification/v0/resnet/resnet18_b16x8_cifar10_20210528-bd6371c8.pth
# (or any .pth trained with this config).
_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']

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
