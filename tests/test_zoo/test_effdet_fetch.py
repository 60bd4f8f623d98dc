"""The EfficientDet path end to end: an effdet-format release file (here a randomised
tf_efficientdet_d0 served on 127.0.0.1 under an effdet-style ``-<sha256 prefix>.pth`` name)
is downloaded, verified, converted to mmdet's 80 COCO labels and loads strictly into the
config's model."""
import io

import torch

import mmdet_spine  # noqa: F401
from effdet_reference import randomized_reference
from helpers import REPO
from mmdet_spine.engine import safe_torch_load
from mmdet_spine.zoo import fetch
from mmdet_spine.zoo.model_index import ENV_INDEX
from zoo_server import LoopbackServer, sha256_bytes, write_index

CONFIG = 'configs/efficientdet/efficientdet_d0_bifpn_8xb16-300e_coco.py'


def test_effdet_release_is_fetched_converted_and_loads(tmp_path, monkeypatch):
    reference = randomized_reference('tf_efficientdet_d0', 512)
    buf = io.BytesIO()
    torch.save(reference.state_dict(), buf)
    data = buf.getvalue()
    file_name = f'tf_efficientdet_d0_34-{sha256_bytes(data)[:8]}.pth'
    server = LoopbackServer()
    server.files['/' + file_name] = data
    try:
        monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
        monkeypatch.setenv(ENV_INDEX, write_index(tmp_path / 'model-index.yml', [{
            'Name': 'd0-test_effdet', 'Config': CONFIG,
            'Weights': f'{server.url}/{file_name}',
            'Upstream': {'Source': 'test', 'Format': 'effdet-pytorch',
                         'SHA256': sha256_bytes(data)[:8], 'Converter': 'effdet2mmdet',
                         'Converter Args': {'num_classes': 80}}}], REPO))
        path = fetch('d0-test_effdet', progress=False)
    finally:
        server.close()
    ckpt = safe_torch_load(path)
    assert ckpt['meta']['zoo_name'] == 'd0-test_effdet'

    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(f'{REPO}/{CONFIG}')
    model = MODELS.build(cfg.model)
    result = model.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    src = reference.state_dict()
    assert torch.equal(model.backbone.stem.conv.weight, src['backbone.conv_stem.weight'])
    # 9 anchors x 80 labels; label 0 (person) is effdet class 0, label 79 (toothbrush) is id 90
    cls_bias = model.bbox_head.cls_pred.pointwise_conv.conv.bias
    assert cls_bias.shape == (9 * 80,)
    assert torch.equal(cls_bias[[0, 79, 80]], src['class_net.predict.conv_pw.bias'][[0, 89, 90]])


def test_automl_rows_are_aliases_of_the_effdet_rows(tmp_path, monkeypatch):
    """google/automl's TF checkpoints are the weights effdet ported: every ``_automl`` row is
    an alias, and ``zoo://`` of it gives the effdet row's converted file."""
    from mmdet_spine.zoo import cached_or_fetch, load_model_index
    zoo = load_model_index()
    automl = sorted(n for n in zoo if n.endswith('_automl'))
    assert len(automl) == 9
    for name in automl:
        assert zoo[name].alias_of == name.replace('_automl', '_effdet'), name
        assert zoo[name].converter is None and zoo[zoo[name].alias_of].converter == 'effdet2mmdet'
    # an alias resolves to its target's cache entry, without any network access
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    from mmdet_spine.zoo import cache_dir
    import os
    os.makedirs(cache_dir())
    buf = io.BytesIO()
    torch.save({'state_dict': {}, 'meta': {}}, buf)
    target = os.path.join(cache_dir(), f'efficientdet-d0_effdet-{sha256_bytes(buf.getvalue())[:8]}.pth')
    with open(target, 'wb') as f:
        f.write(buf.getvalue())
    assert cached_or_fetch('efficientdet-d0_automl') == target
    assert fetch('efficientdet-d0_automl') == target
