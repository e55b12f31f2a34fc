"""The CPU kernels at every SIMD level this CPU runs (generic C, AVX2, AVX-512)."""
import pytest

from gpt4all_core.backend import cpu_kernels


@pytest.fixture(params=cpu_kernels.supported_simd_levels())
def simd(request):
    """Run the test with the kernels of one SIMD level forced, then put the previous level back."""
    before = cpu_kernels.simd_level()
    cpu_kernels.select_simd(request.param)
    assert cpu_kernels.simd_level() == request.param
    yield request.param
    cpu_kernels.select_simd(before)
