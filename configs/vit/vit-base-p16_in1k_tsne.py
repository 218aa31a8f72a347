# t-SNE of a ViT-B/16 on ImageNet-1k: mmpretrain's own config, plus the t-SNE
# hyper-parameters. It inherits the 384 px config because that is the one
# mmpretrain's model zoo has ImageNet-1k weights for
# (vit-base-p16_in21k-pre_3rdparty_in1k-384px); the 224 px
# vit-base-p16_64xb64_in1k.py has none. The points are the images of
# test_dataloader: the ImageNet val set, prepared by hand under
# data/imagenet (mmpretrain cannot download it).
#
#   python tools/vis_tsne.py configs/vit/vit-base-p16_in1k_tsne.py \
#       --checkpoint vit-base-p16_in21k-pre-3rdparty_ft-64xb64_in1k-384_20210928-98e8652b.pth \
#       --max-num-class 10 --max-num-samples 50
#
# with the checkpoint of mmpretrain's model zoo, from
# https://download.openmmlab.com/mmclassification/v0/vit/finetune/vit-base-p16_in21k-pre-3rdparty_ft-64xb64_in1k-384_20210928-98e8652b.pth
#
# ViT-B at 384 px costs about 50 GFLOPs an image: use a GPU, or few classes
# and samples as above. ViT has no neck, so the neck stage gives the
# backbone's class token; --vis-stage pre_logits gives the head's input.
_base_ = ['mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k-384px.py']

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
