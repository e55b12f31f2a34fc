#version 450
// Writes the subgroup size the device runs compute shaders with (VulkanContext reads it once).
#extension GL_KHR_shader_subgroup_basic : require
layout(local_size_x = 1) in;
layout(set = 0, binding = 0) writeonly buffer Out { uint subgroup_size; };

void main() { subgroup_size = gl_SubgroupSize; }
