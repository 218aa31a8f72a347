"""tsneviz.params: the constraints table."""
import numbers

import pytest

from tsneviz.errors import UserError
from tsneviz.params import Interval, Options, validate_params

TABLE = {'n': [Interval(numbers.Integral, 1, 3)],
         'p': [Interval(numbers.Real, 0, open_low=True)],
         'mode': [Options(['a', 'b'])],
         'dims': [None, Interval(numbers.Integral, 0)]}


def test_valid_values_pass():
    validate_params({'n': 2, 'p': 0.1, 'mode': 'a', 'dims': None}, TABLE,
                    'X')


@pytest.mark.parametrize('params, needle', [
    ({'n': 4}, 'n=4 is invalid; it must be an integer in [1, 3]'),
    ({'n': 2.0}, 'n=2.0'),
    ({'n': True}, 'n=True'),
    ({'p': 0}, 'p=0 is invalid; it must be a number in (0, inf]'),
    ({'mode': 'c'}, "one of 'a', 'b'"),
    ({'dims': -1}, 'it must be None or an integer in [0, inf]'),
    ({'q': 1}, "unknown parameter 'q'; valid parameters are dims, mode"),
])
def test_invalid_values_name_value_and_rule(params, needle):
    with pytest.raises(UserError) as err:
        validate_params(params, TABLE, 'X')
    assert needle in str(err.value)
