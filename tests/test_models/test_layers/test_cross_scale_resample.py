"""Cross-scale resampling: shapes up/down, structure, TF 'SAME' max-pool semantics."""
import pytest
import torch
import torch.nn.functional as F

from mmdet_spine.models.layers import CrossScaleResample, strided_max_pool


@pytest.mark.parametrize('in_level, out_level, size, out', [
    (3, 3, 16, 16), (3, 4, 16, 8), (3, 6, 16, 2), (5, 3, 4, 16), (7, 2, 1, 32)])
def test_shapes(in_level, out_level, size, out):
    m = CrossScaleResample(12, 4, 10, in_level, out_level).eval()
    with torch.no_grad():
        y = m(torch.rand(1, 12, size, size))
    assert y.shape == (1, 10, out, out)
    assert (m.down_conv is not None) == (out_level > in_level)
    num_pools = 0 if m.pools is None else len(m.pools)
    assert num_pools == max(out_level - in_level - 1, 0)
    assert m.conv_out.activate is None if hasattr(m.conv_out, 'activate') else True
    assert not m.conv_out.with_activation


def test_upsample_to_given_size():
    m = CrossScaleResample(4, 4, 4, 5, 4).eval()
    with torch.no_grad():
        assert m(torch.rand(1, 4, 4, 3), out_size=(7, 5)).shape == (1, 4, 7, 5)


def test_tf_same_max_pool_pads_with_minus_inf_at_the_end():
    x = -torch.arange(1., 17.).reshape(1, 1, 4, 4)  # all negative: zero padding would win
    tf = strided_max_pool('tf_same')(x)
    expect = torch.stack([torch.stack([x[0, 0, i:i + 3, j:j + 3].max() for j in (0, 2)])
                          for i in (0, 2)])
    torch.testing.assert_close(tf[0, 0], expect)
    pt = strided_max_pool('pytorch')(x)
    torch.testing.assert_close(pt, F.max_pool2d(x, 3, 2, 1))
    assert not torch.equal(pt, tf)


def test_errors():
    with pytest.raises(ValueError, match=r"padding_mode='SAME'.*pytorch, tf_same"):
        CrossScaleResample(4, 2, 4, 3, 4, padding_mode='SAME')
    with pytest.raises(ValueError, match=r'mid_channels=0'):
        CrossScaleResample(4, 0, 4, 3, 4)
