/* What one submit's round trip costs on a Vulkan device, the way Kompute 0.9.0 makes it and the
 * ways it could: a command buffer holding one 4-byte vkCmdFillBuffer, submitted and waited for
 * again and again. Each line is the median of N round trips after 0.3 s of the same work:
 *
 *   fence create+destroy        vkCreateFence and vkDestroyFence alone, no submit
 *   fresh fence, wait           Kompute's Sequence::eval: a new fence each submit, waited on, destroyed
 *   reused fence, wait          one fence for every submit, reset before each
 *   reused fence, spin          the same, polling vkGetFenceStatus until it is signalled
 *
 * A decode step pays one round trip a token, so this is the floor under a token's time.
 *
 *     cc -O2 -o submit_latency benchmarks/gpu/submit_latency.c -lvulkan && ./submit_latency [DEVICE] [N]
 *
 * On the device tool's machines (the loader and headers only, in seconds):
 *
 *     bash benchmarks/gpu/setup.sh --vulkan-only && . /opt/gk/env.sh && cc -O2 -I/opt/gk/usr/include \
 *       -o /tmp/submit_latency benchmarks/gpu/submit_latency.c -L/opt/gk/usr/lib/x86_64-linux-gnu -lvulkan && \
 *       /tmp/submit_latency 0 3000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vulkan/vulkan.h>

#define CHECK(call)                                                                    \
    do {                                                                               \
        VkResult r_ = (call);                                                          \
        if (r_ != VK_SUCCESS) {                                                        \
            fprintf(stderr, "submit_latency: %s failed (VkResult %d)\n", #call, r_);  \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct gpu {
    VkDevice device;
    VkQueue queue;
    VkCommandBuffer cmd;
    VkFence fence;  /* the reused one */
};

enum way { CREATE_DESTROY, FRESH_WAIT, REUSED_WAIT, REUSED_SPIN };
static const char *way_names[] = {"fence create+destroy", "fresh fence, wait", "reused fence, wait",
                                  "reused fence, spin"};

static void round_trip(const struct gpu *g, enum way way) {
    VkFenceCreateInfo fence_info = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkSubmitInfo submit = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1,
                           .pCommandBuffers = &g->cmd};
    VkFence fence = g->fence;
    if (way == CREATE_DESTROY || way == FRESH_WAIT) CHECK(vkCreateFence(g->device, &fence_info, NULL, &fence));
    else CHECK(vkResetFences(g->device, 1, &fence));
    if (way != CREATE_DESTROY) {
        CHECK(vkQueueSubmit(g->queue, 1, &submit, fence));
        if (way == REUSED_SPIN)
            while (vkGetFenceStatus(g->device, fence) == VK_NOT_READY) __builtin_ia32_pause();
        CHECK(vkWaitForFences(g->device, 1, &fence, VK_TRUE, UINT64_MAX));
    }
    if (way == CREATE_DESTROY || way == FRESH_WAIT) vkDestroyFence(g->device, fence, NULL);
}

static double median_us(const struct gpu *g, enum way way, int n) {
    double t0 = now_us();
    while (now_us() - t0 < 3e5) round_trip(g, way);
    double *times = malloc(n * sizeof *times);
    for (int i = 0; i < n; i++) {
        double t = now_us();
        round_trip(g, way);
        times[i] = now_us() - t;
    }
    qsort(times, n, sizeof *times, by_value);
    double m = times[n / 2];
    free(times);
    return m;
}

int main(int argc, char **argv) {
    int device_index = argc > 1 ? atoi(argv[1]) : 0, n = argc > 2 ? atoi(argv[2]) : 2000;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo instance_info = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkInstance instance;
    CHECK(vkCreateInstance(&instance_info, NULL, &instance));
    uint32_t count = 0;
    CHECK(vkEnumeratePhysicalDevices(instance, &count, NULL));
    if (device_index < 0 || (uint32_t)device_index >= count) {
        fprintf(stderr, "submit_latency: device %d of %u\n", device_index, count);
        return 1;
    }
    VkPhysicalDevice *physical = malloc(count * sizeof *physical);
    CHECK(vkEnumeratePhysicalDevices(instance, &count, physical));
    VkPhysicalDevice pd = physical[device_index];
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(pd, &props);

    /* the first family with compute, as Kompute picks it */
    uint32_t n_families = 0, family = UINT32_MAX;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_families, NULL);
    VkQueueFamilyProperties *families = malloc(n_families * sizeof *families);
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_families, families);
    for (uint32_t i = 0; i < n_families && family == UINT32_MAX; i++)
        if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family = i;
    float priority = 1.0f;
    VkDeviceQueueCreateInfo queue_info = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                          .queueFamilyIndex = family, .queueCount = 1, .pQueuePriorities = &priority};
    VkDeviceCreateInfo device_info = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                                      .pQueueCreateInfos = &queue_info};
    struct gpu g;
    CHECK(vkCreateDevice(pd, &device_info, NULL, &g.device));
    vkGetDeviceQueue(g.device, family, 0, &g.queue);

    /* a 256-byte device buffer for the fill to write */
    VkBufferCreateInfo buffer_info = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 256,
                                      .usage = VK_BUFFER_USAGE_TRANSFER_DST_BIT};
    VkBuffer buffer;
    CHECK(vkCreateBuffer(g.device, &buffer_info, NULL, &buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(g.device, buffer, &req);
    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    uint32_t type = 0;
    while (!(req.memoryTypeBits & (1u << type))) type++;
    VkMemoryAllocateInfo alloc = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                  .memoryTypeIndex = type};
    VkDeviceMemory memory;
    CHECK(vkAllocateMemory(g.device, &alloc, NULL, &memory));
    CHECK(vkBindBufferMemory(g.device, buffer, memory, 0));

    VkCommandPoolCreateInfo pool_info = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                         .queueFamilyIndex = family};
    VkCommandPool pool;
    CHECK(vkCreateCommandPool(g.device, &pool_info, NULL, &pool));
    VkCommandBufferAllocateInfo cmd_info = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                            .commandPool = pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                            .commandBufferCount = 1};
    CHECK(vkAllocateCommandBuffers(g.device, &cmd_info, &g.cmd));
    VkCommandBufferBeginInfo begin = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    CHECK(vkBeginCommandBuffer(g.cmd, &begin));
    vkCmdFillBuffer(g.cmd, buffer, 0, 4, 0x12345678u);
    CHECK(vkEndCommandBuffer(g.cmd));
    VkFenceCreateInfo fence_info = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    CHECK(vkCreateFence(g.device, &fence_info, NULL, &g.fence));

    printf("{\"device\": \"%s\", \"n\": %d", props.deviceName, n);
    for (int w = CREATE_DESTROY; w <= REUSED_SPIN; w++) {
        double us = median_us(&g, (enum way)w, n);
        printf(", \"%s us\": %.1f", way_names[w], us);
        fprintf(stderr, "%-24s %8.1f us\n", way_names[w], us);
    }
    printf("}\n");

    vkDestroyFence(g.device, g.fence, NULL);
    vkDestroyCommandPool(g.device, pool, NULL);
    vkDestroyBuffer(g.device, buffer, NULL);
    vkFreeMemory(g.device, memory, NULL);
    vkDestroyDevice(g.device, NULL);
    vkDestroyInstance(instance, NULL);
    free(families);
    free(physical);
    return 0;
}
