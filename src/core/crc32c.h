/* CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the
 * checksum of iSCSI, ext4 and most log formats. A slicing-by-8 software
 * version, plus the SSE4.2 crc32 instruction where the CPU has it, chosen
 * once at run time. crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * Thread context: any thread; the tables are built on first use under
 * pthread_once. */
#ifndef FG_CRC32C_H
#define FG_CRC32C_H

#include "core/common.h"

/* Extends crc (0 to start, or the result of an earlier call) with len
 * bytes: crc32c(crc32c(0, a, n), b, m) == crc32c(0, a || b, n + m). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The two implementations, for tests and benchmarks. crc32c_hw() must only
 * be called when crc32c_hw_available(). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool crc32c_hw_available(void);

#endif
